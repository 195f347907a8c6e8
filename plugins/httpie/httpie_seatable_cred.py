"""HTTPie auth plugin ``seatable-cred``: each request carries
``Authorization: Bearer <base token>`` from the seatable-cred helper.

    http --auth-type seatable-cred GET https://cloud.seatable.io/api-gateway/api/v2/dtables/<uuid>/metadata/
    http -A seatable-cred -a crm GET …        # -a picks the helper's profile

The token is asked for when the request is sent (so it is fresh, and from
the helper's cache most of the time) and never appears on a command line.
"""

import os
import subprocess

import requests.auth
from httpie.plugins import AuthPlugin

__version__ = "0.1.0"


class SeaTableCredError(RuntimeError):
    pass


def base_token(profile=None):
    """The base token of `profile` (or the helper's default profile)."""
    argv = [os.environ.get("SEATABLE_CRED_BIN") or "seatable-cred"]
    if profile:
        argv += ["--profile", profile]
    argv += ["get", "-o", "token"]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    except FileNotFoundError:
        raise SeaTableCredError("seatable-cred not found: install it or set SEATABLE_CRED_BIN") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SeaTableCredError(lines[-1] if lines else f"seatable-cred failed ({done.returncode})")
    return done.stdout.decode().strip()


class BaseTokenAuth(requests.auth.AuthBase):
    def __init__(self, profile=None):
        self.profile = profile

    def __call__(self, request):
        request.headers["Authorization"] = "Bearer " + base_token(self.profile)
        return request


class SeaTableCredAuthPlugin(AuthPlugin):
    name = "seatable-cred"
    auth_type = "seatable-cred"
    description = "SeaTable base token from the seatable-cred helper (-a PROFILE optional)"
    auth_require = False
    auth_parse = False
    prompt_password = False

    def get_auth(self, username=None, password=None):
        profile = (self.raw_auth or "").strip() or None
        return BaseTokenAuth(profile)
