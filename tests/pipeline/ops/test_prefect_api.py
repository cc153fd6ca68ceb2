"""Which Prefect API a run uses: one already running (PREFECT_API_URL, or the profile's, answering) first."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pipeline.ops import prefect_api


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prefect_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    return tmp_path


def _profile(home: Path, url: str) -> None:
    (home / "profiles.toml").write_text(f'active = "local"\n\n[profiles.local]\nPREFECT_API_URL = "{url}"\n')


def test_the_environment_s_api_url_wins(prefect_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.internal:4200/api")
    assert prefect_api.running_api_url() == "http://prefect.internal:4200/api"


def test_the_profile_s_api_is_reused_only_when_it_answers(prefect_home: Path) -> None:
    assert prefect_api.running_api_url() is None  # no profiles file
    server = HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api"
    try:
        _profile(prefect_home, url)
        assert prefect_api.running_api_url() == url
    finally:
        server.shutdown()
        server.server_close()
    assert prefect_api.running_api_url(timeout=0.5) is None  # configured, but nothing answers: start our own
    (prefect_home / "profiles.toml").write_text("not = [toml\n")
    assert prefect_api.running_api_url() is None
