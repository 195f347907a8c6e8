"""seatable_cred.Base against the real seatable-api SDK, a real OpenBao and
the SeaTable stand-in."""

import base64
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import seatable_api

from seatable_cred import Base, NotAvailableError, SeaTableCredError


def exchanges(env):
    return env["standin"].stats()["exchanges"]


def test_auth_and_sdk_calls_without_the_api_token(base_env):
    env = base_env()
    before = exchanges(env)
    base = Base()
    assert isinstance(base, seatable_api.Base)
    base.auth()
    tables = base.list_tables()
    assert tables[0]["name"] == "Table1"
    assert base.dtable_uuid == env["base"]["dtable_uuid"]
    assert base.dtable_name == env["base"]["dtable_name"]
    assert base.permission == "rw"
    assert base.list_rows("Table1")[0]["Name"] == "Ada"
    # The API token is nowhere in the object.
    api_token = env["base"]["api_token"]
    assert api_token not in repr(vars(base)) and api_token not in repr(vars(base.api_gateway))
    # A second Base in another process would be answered from the cache.
    Base().auth()
    assert exchanges(env) == before + 1


def test_profile_from_the_config_file(base_env, crm_profile):
    crm_profile(base_env())
    base = Base(profile="crm")
    base.auth()
    assert base.list_tables()
    with pytest.raises(SeaTableCredError) as err:
        Base(profile="nope").auth()
    assert err.value.returncode == 2
    assert "profile 'nope'" in str(err.value)


def _exp(jwt):
    """The `exp` of a JWT (the stand-in's clock is this machine's)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def test_long_running_script_survives_token_expiry(base_env):
    # The stand-in issues 6-second tokens: the helper refreshes 3 s after issue,
    # 3 s before the server would refuse the token.
    env = base_env(lifetime_secs=6)
    before = exchanges(env)
    refused = env["standin"].stats()["gateway_refused"]
    base = Base()
    base.auth()
    seen = {base.jwt_token}
    # Until the script has gone through three tokens (bounded, not timed).
    deadline = time.monotonic() + 90
    while len(seen) < 3:
        assert time.monotonic() < deadline, f"only {len(seen)} tokens within 90 s"
        assert base.list_tables()
        seen.add(base.jwt_token)
        time.sleep(0.2)
    assert exchanges(env) >= before + 3
    assert env["standin"].stats()["gateway_refused"] == refused, "refreshed before the server refused"


def test_auth_expired_from_the_server_triggers_one_refresh(base_env):
    env = base_env(lifetime_secs=2)
    base = Base()
    base.auth()
    # Pretend our clock is behind: we would not refresh on our own.
    base.refresh_at = datetime.now(timezone.utc) + timedelta(days=1)
    # Until the token's own expiry has passed (the stand-in refuses it from then on).
    expiry = _exp(base.jwt_token)
    while time.time() < expiry + 0.05:
        time.sleep(max(0.01, expiry + 0.05 - time.time()))
    refused = env["standin"].stats()["gateway_refused"]
    assert base.list_tables()  # 403 "Token expired." → refresh → retry
    assert env["standin"].stats()["gateway_refused"] == refused + 1


def test_calls_needing_the_api_token_are_refused_clearly(base_env):
    base_env()
    base = Base()
    base.auth()
    with pytest.raises(NotAvailableError, match="API token"):
        base.get_file_download_link("/files/x.txt")


def test_helper_failures_carry_its_message_and_exit_code(base_env, monkeypatch):
    base_env()
    monkeypatch.setenv("SEATABLE_CRED_SECRET", "secret/plugins/does-not-exist")
    with pytest.raises(SeaTableCredError) as err:
        Base().auth()
    assert err.value.returncode == 3
    assert "no secret at secret/plugins/does-not-exist" in str(err.value)
    monkeypatch.setenv("SEATABLE_CRED_BIN", "/nonexistent/seatable-cred")
    with pytest.raises(SeaTableCredError) as err:
        Base().auth()
    assert err.value.returncode == 127
