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
    out = run(shell, f"seatable_curl '{url}' --silent --fail")
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
    out = run(shell, "seatable_curl http://127.0.0.1:9/never --silent; echo \"status=$?\"")
    assert "status=3" in out.stdout
    assert "no secret at secret/plugins/missing" in out.stderr
    out = run(shell, "seatable_env; echo \"status=$?\"")
    assert "status=3" in out.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_seatable_curl_sends_the_token_only_to_the_profiles_server(shell, base_env, capture):
    env = base_env()
    good = f"{env['standin'].url}/api-gateway/api/v2/dtables/{env['base']['dtable_uuid']}/metadata/"
    elsewhere = capture.url.removeprefix("http://")
    for args in [
        f"'{capture.url}/x'",                      # another origin
        f"'{good}' '{capture.url}/x'",             # a second URL
        f"'{good}' '{elsewhere}/steal'",           # a second URL without a scheme
        f"'{good}' --url '{capture.url}/x'",
        f"'{good}' --next '{capture.url}/x'",
        f"'{good}' -x '{elsewhere}'",
        f"'{good}' -sx '{elsewhere}'",
        f"'{good}' --proxy='{capture.url}'",
        f"'{good}' -K /dev/null",
        "--silent",                                # no URL first
    ]:
        out = run(shell, f"seatable_curl {args}; echo \"status=$?\"")
        assert "status=2" in out.stdout, (args, out.stdout, out.stderr)
    assert capture.seen == [], "a request reached another host"
    # Options with their values, and clusters, are fine.
    out = run(shell, f"seatable_curl '{good}' -sS -o /dev/null -w '%{{http_code}}' -H 'Accept: application/json' --max-time 30")
    assert out.returncode == 0 and out.stdout == "200", (out.stdout, out.stderr)

