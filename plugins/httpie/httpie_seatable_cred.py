"""HTTPie auth plugin ``seatable-cred``: each request carries
``Authorization: Bearer <base token>`` from the seatable-cred helper.

    http --auth-type seatable-cred GET https://cloud.seatable.io/api-gateway/api/v2/dtables/<uuid>/metadata/
    http -A seatable-cred -a crm GET …        # -a picks the helper's profile

The token is asked for when the request is sent (so it is fresh, and from
the helper's cache most of the time), never appears on a command line, and
is attached only to requests for the profile's SeaTable server.
"""

import json
import os
import subprocess
import urllib.parse

import requests.auth
from httpie.plugins import AuthPlugin

__version__ = "0.1.0"


class SeaTableCredError(RuntimeError):
    pass


def credential(profile=None):
    """The helper's answer for `profile` (or its default profile): the base
    token and the base context, as `seatable-cred get -o json` prints them."""
    argv = [os.environ.get("SEATABLE_CRED_BIN") or "seatable-cred"]
    if profile:
        argv += ["--profile", profile]
    argv += ["get", "-o", "json"]
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
    return json.loads(done.stdout)


def origin(url):
    """scheme://host[:port] of a URL, lower-cased, without a default port."""
    parts = urllib.parse.urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None or port == {"http": 80, "https": 443}.get(scheme):
        port = None
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


class BaseTokenAuth(requests.auth.AuthBase):
    """Adds the base token — only to requests for the profile's SeaTable
    server (its own origin, or the API gateway's the server named): the
    token opens the base, and no other host gets to see it."""

    def __init__(self, profile=None):
        self.profile = profile

    def __call__(self, request):
        cred = credential(self.profile)
        allowed = {
            origin(u)
            for u in (cred.get("server_url"), cred.get("api_gateway_url"), cred.get("dtable_server"))
            if u
        }
        target = origin(request.url)
        if target is None or target not in allowed:
            raise SeaTableCredError(
                f"refusing to send the base token to {target}: it is not the profile's SeaTable server "
                f"({cred.get('server_url')})"
            )
        request.headers["Authorization"] = "Bearer " + cred["token"]
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
