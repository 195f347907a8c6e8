"""The shell functions, run by bash (and zsh when installed)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parent.parent / "seatable-cred.sh"
# Both shells the functions are for; a missing one fails its tests (the test
# set-up, scripts/test.sh, installs zsh where it can).
SHELLS = ["bash", "zsh"]


def run(shell, script):
    if not shutil.which(shell):
        pytest.fail(f"{shell} is not installed: the shell functions are tested in bash and zsh (apt-get install {shell})")
    return subprocess.run([shell, "-c", f"source '{FUNCTIONS}'\n{script}"], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("shell", SHELLS)
def test_seatable_curl_sends_the_base_token(shell, base_env):
    env = base_env()
    url = f"{env['standin'].url}/api-gateway/api/v2/dtables/{env['base']['dtable_uuid']}/metadata/"
    out = run(shell, f"seatable_curl --silent --fail '{url}'")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metadata"]["tables"]
    # Without the function the gateway refuses.
    assert run(shell, f"curl --silent --fail '{url}'").returncode != 0


@pytest.mark.parametrize("shell", SHELLS)
def test_seatable_env_exports_the_context(shell, base_env):
    env = base_env()
    out = run(shell, 'seatable_env && printf "%s|%s|%s" "$SEATABLE_BASE_UUID" "$SEATABLE_SERVER_URL" "${#SEATABLE_BASE_TOKEN}"')
    assert out.returncode == 0, out.stderr
    uuid, server, token_length = out.stdout.split("|")
    assert uuid == env["base"]["dtable_uuid"]
    assert server == env["standin"].url
    assert int(token_length) > 40


@pytest.mark.parametrize("shell", SHELLS)
def test_helper_failure_stops_before_curl(shell, base_env, monkeypatch):
    base_env()
    monkeypatch.setenv("SEATABLE_CRED_SECRET", "secret/plugins/missing")
    out = run(shell, "seatable_curl --silent http://127.0.0.1:9/never; echo \"status=$?\"")
    assert "status=3" in out.stdout
    assert "no secret at secret/plugins/missing" in out.stderr
    out = run(shell, "seatable_env; echo \"status=$?\"")
    assert "status=3" in out.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_seatable_curl_sends_the_token_only_to_the_profiles_server(shell, base_env, capture):
    base_env()
    for args in [f"'{capture.url}/x'", f"--silent '{capture.url}/x'", "--silent"]:
        out = run(shell, f"seatable_curl {args}; echo \"status=$?\"")
        assert "status=0" not in out.stdout, args
    assert capture.authorizations() == [], "the base token reached another host"

