"""The HTTPie plugin through the real `http` command."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def http(*args):
    exe = shutil.which("http") or str(Path(sys.executable).parent / "http")
    return subprocess.run(
        [exe, "--ignore-stdin", "--check-status", "--print=b", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_plugin_is_registered():
    out = http("--help")
    assert "seatable-cred" in out.stdout


def test_metadata_with_the_base_token(base_env):
    env = base_env()
    standin = env["standin"]
    url = f"{standin.url}/api-gateway/api/v2/dtables/{env['base']['dtable_uuid']}/metadata/"
    out = http("--auth-type", "seatable-cred", "GET", url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["metadata"]["tables"][0]["name"] == "Table1"
    assert env["base"]["api_token"] not in out.stdout + out.stderr
    # A second request is served from the helper's cache: no new exchange.
    exchanges = standin.stats()["exchanges"]
    assert http("-A", "seatable-cred", "GET", url).returncode == 0
    assert standin.stats()["exchanges"] == exchanges


def test_profile_through_dash_a(base_env, crm_profile):
    env = base_env()
    crm_profile(env)
    url = f"{env['standin'].url}/api-gateway/api/v2/dtables/{env['base']['dtable_uuid']}/metadata/"
    assert http("-A", "seatable-cred", "-a", "crm", "GET", url).returncode == 0
    failed = http("-A", "seatable-cred", "-a", "nope", "GET", url)
    assert failed.returncode != 0
    assert "profile 'nope'" in failed.stderr


def test_without_the_plugin_the_gateway_refuses(base_env):
    env = base_env()
    url = f"{env['standin'].url}/api-gateway/api/v2/dtables/{env['base']['dtable_uuid']}/metadata/"
    assert http("GET", url).returncode != 0


def test_the_token_goes_only_to_the_profiles_server(base_env, capture):
    base_env()
    out = http("--auth-type", "seatable-cred", "GET", capture.url + "/api-gateway/x")
    assert out.returncode != 0, "a request to another origin must not be sent"
    assert capture.authorizations() == [], "the base token reached another host"
    assert "not the profile's SeaTable server" in out.stderr

