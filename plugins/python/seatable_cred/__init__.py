"""SeaTable's Python SDK, authenticated by the seatable-cred helper.

``seatable_cred.Base`` is a ``seatable_api.Base`` whose ``auth()`` asks the
``seatable-cred`` helper for a base token (``get -o json``) instead of
exchanging an API token itself. The API token stays in Vault/OpenBao; this
process only ever holds short-lived base tokens. Before the helper's
``refresh_at`` — and once more when the server answers that the token
expired — it asks again, so a long-running script keeps working across
expiries.

    from seatable_cred import Base
    base = Base()            # or Base(profile="crm")
    base.auth()
    print(base.list_tables())
"""

import json
import os
import subprocess
import threading
from datetime import datetime, timezone

import seatable_api
from seatable_api.api_gateway import APIGateway
from seatable_api.exception import AuthExpiredError
from seatable_api.utils import parse_headers

__all__ = ["Base", "SeaTableCredError", "NotAvailableError"]

# SDK calls that need the API token itself (file upload/download links,
# account lookups): the helper never hands the API token out.
NEEDS_API_TOKEN = frozenset(
    {
        "get_file_download_link",
        "get_file_upload_link",
        "download_file",
        "upload_bytes_file",
        "upload_local_file",
        "get_custom_file_download_link",
        "get_custom_file_upload_link",
        "download_custom_file",
        "upload_local_file_to_custom_folder",
        "get_custom_file_info",
        "list_custom_assets",
        "get_user_info",
        "send_email",
        "send_wechat_msg",
    }
)

# Methods that must not trigger a refresh themselves.
_NOT_WRAPPED = frozenset({"auth", "refresh"})


class SeaTableCredError(RuntimeError):
    """The helper failed; ``returncode`` is its exit code (SPEC §8)."""

    def __init__(self, message, returncode):
        super().__init__(message)
        self.returncode = returncode


class NotAvailableError(NotImplementedError):
    """The SDK call needs the API token, which seatable-cred never hands out."""


def _parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


class Base(seatable_api.Base):
    """A ``seatable_api.Base`` that never holds the API token.

    :param profile: the helper's profile (``--profile``); ``None`` uses the
        helper's default (``SEATABLE_CRED_PROFILE`` or ``default``).
    :param command: the helper executable (default: ``$SEATABLE_CRED_BIN``
        or ``seatable-cred`` on ``PATH``).
    :param timeout: seconds to wait for the helper.
    """

    def __init__(self, profile=None, command=None, timeout=120):
        super().__init__(token="", server_url="")
        self.token = None  # never the API token
        self._profile = profile
        self._command = command or os.environ.get("SEATABLE_CRED_BIN") or "seatable-cred"
        self._helper_timeout = timeout
        self.refresh_at = None
        self.expires_at = None
        self.permission = None
        self._local = threading.local()

    def _clone(self):
        clone = Base(self._profile, self._command, self._helper_timeout)
        clone.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k != "_local"}
        )
        return clone

    # -- talking to the helper ------------------------------------------

    def _ask(self, refresh=False):
        argv = [self._command]
        if self._profile:
            argv += ["--profile", self._profile]
        argv += ["get", "-o", "json"]
        if refresh:
            argv.append("--refresh")
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=self._helper_timeout,
                check=False,
            )
        except FileNotFoundError:
            raise SeaTableCredError(
                "seatable-cred not found: install it or set SEATABLE_CRED_BIN", 127
            ) from None
        except subprocess.TimeoutExpired:
            raise SeaTableCredError("seatable-cred did not answer in time", 5) from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SeaTableCredError(
                message[-1] if message else "seatable-cred failed", done.returncode
            )
        return json.loads(done.stdout)

    def auth(self, with_socket_io=False):
        """Gets a base token from the helper and sets the SDK up with it."""
        self._apply(self._ask())
        if with_socket_io:
            base = self._clone()
            self.socketIO = seatable_api.main.SocketIO(base)
            self.socketIO._connect()

    def refresh(self):
        """Asks the helper for a new base token, ignoring its cache."""
        self._apply(self._ask(refresh=True))

    def _apply(self, cred):
        token = cred["token"]
        self.server_url = cred["server_url"].rstrip("/")
        dtable_server = cred.get("dtable_server") or cred["api_gateway_url"]
        self.dtable_server_url = dtable_server.rstrip("/")
        # 4.x servers without a gateway keep dtable-db at its default place.
        self.dtable_db_url = (
            self.dtable_server_url
            if cred.get("use_api_gateway")
            else self.server_url + "/dtable-db"
        )
        self.jwt_token = token
        self.headers = parse_headers(token)
        self.workspace_id = cred.get("workspace_id")
        self.dtable_uuid = cred.get("dtable_uuid")
        self.dtable_name = cred.get("dtable_name")
        self.permission = cred.get("permission")
        self.expires_at = _parse_time(cred["expires_at"])
        self.refresh_at = _parse_time(cred["refresh_at"])
        self.jwt_exp = self.expires_at.astimezone().replace(tzinfo=None)
        self.use_api_gateway = bool(cred.get("use_api_gateway"))
        self.api_gateway = None
        if self.use_api_gateway:
            self.api_gateway = APIGateway(
                token=None,
                api_gateway_url=cred["api_gateway_url"].rstrip("/"),
                server_url=self.server_url,
                headers=self.headers,
                dtable_uuid=self.dtable_uuid,
            )
        self.is_authed = True

    # -- keeping the token fresh around every SDK call -------------------

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name.startswith("_") or name in _NOT_WRAPPED or not callable(attr):
            return attr
        if name in NEEDS_API_TOKEN:
            return _not_available(name)
        local = super().__getattribute__("_local")
        if getattr(local, "depth", 0):
            return attr  # a call made by an SDK method we already wrapped

        def call(*args, **kwargs):
            local.depth = getattr(local, "depth", 0) + 1
            try:
                refresh_at = super(Base, self).__getattribute__("refresh_at")
                if refresh_at is not None and datetime.now(timezone.utc) >= refresh_at:
                    self.auth()
                try:
                    return attr(*args, **kwargs)
                except AuthExpiredError:
                    # The server disagrees with our clock: a new token, once.
                    self.refresh()
                    return attr(*args, **kwargs)
            finally:
                local.depth -= 1

        return call


def _not_available(name):
    def refuse(*_args, **_kwargs):
        raise NotAvailableError(
            f"{name} needs the base's API token, which seatable-cred keeps in Vault; "
            "use seatable_api.Base with an API token for file transfers and account lookups"
        )

    return refuse
