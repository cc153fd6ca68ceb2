"""The Prefect API a run or a served deployment talks to.

`PREFECT_API_URL` when the caller has one (a long-lived `prefect server start`, Prefect Cloud), or
the active Prefect profile's API URL when that server answers its health check within a second
(`running_api_url`); otherwise a temporary local server that lives exactly as long as this process. Prefect's own
ephemeral server is a child process that outlives a killed parent; this one is started with the
kernel's parent-death signal, so whatever ends the run (an error, Ctrl-C, SIGKILL) ends the server.

    server = start_temporary_server(services=False)   # started at once, in the background
    ...                                                # import the flows meanwhile
    server.wait_ready()

Starting the temporary one costs about 5 CPU seconds, nearly all of it the server importing its
own modules; for a one-shot run (no `services`) it is started without Prefect's CLI (uvicorn on
the server app directly: no CLI import), without the UI, background services, telemetry or block
registration. `goodhart serve` keeps Prefect's own `prefect server start` with its services (its
cron needs the scheduler).
"""
from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class PrefectServerError(UsageError):
    """The temporary Prefect server did not start."""


class TemporaryServer:
    """A `prefect server start` child on a free loopback port; see the module doc."""

    def __init__(self, *, services: bool, startup_timeout: float = 180.0) -> None:
        self.services = services
        self.startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port_}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port_}"

    def start(self) -> TemporaryServer:
        self.port_ = _free_port()
        self.log_ = tempfile.NamedTemporaryFile(prefix="goodhart-prefect-server-", suffix=".log", delete=False)
        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"}
        if self.services:
            command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port_)]
        else:
            command = [sys.executable, "-c", _WEBSERVER_ONLY.format(port=self.port_)]
            env.update(_ONE_SHOT_SETTINGS)
        env.pop("PREFECT_API_URL", None)
        parent = os.getpid()
        self.process_ = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log_, env=env,
            preexec_fn=lambda: _end_with_parent(parent),
        )
        return self

    def wait_ready(self) -> str:
        """Block until the API answers its health check; its URL."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except OSError:
                pass
            if self.process_.poll() is not None or time.monotonic() > deadline:
                raise PrefectServerError(
                    f"the temporary Prefect server did not start ({self._last_log_line()}); "
                    "set PREFECT_API_URL to a running server, or use --no-prefect"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        if self.log_.closed:
            return
        if self.process_.poll() is None:
            self.process_.terminate()
            try:
                self.process_.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process_.kill()
                self.process_.wait()
        self.log_.close()
        Path(self.log_.name).unlink(missing_ok=True)

    def _last_log_line(self) -> str:
        self.log_.flush()
        lines = [line for line in Path(self.log_.name).read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit code {self.process_.poll()}"


def api_server(*, services: bool) -> TemporaryServer | None:
    """None when there is an API to use (PREFECT_API_URL, or the active profile's, answering);
    otherwise a temporary local server, started now in the background, that stops when this
    process exits (with `services`, the scheduler too: serve needs it, a single run does not)."""
    url = running_api_url()
    if url:
        os.environ["PREFECT_API_URL"] = url
        return None
    server = start_temporary_server(services=services)
    os.environ["PREFECT_API_URL"] = server.url  # read by Prefect at import, and by served runs' processes
    return server


@contextmanager
def use_api(server: TemporaryServer | None, *, report: Any, while_starting: Callable[[], object]) -> Iterator[None]:
    """Run the block against `server` (from `api_server`) once it answers, or against the API
    already set when None; `while_starting()` (importing the flows, and Prefect with them) runs
    while the server starts. `report`: the progress reporter (pipeline.progress)."""
    if server is not None:
        report.stage("starting a temporary Prefect server")
    while_starting()
    if server is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    server.wait_ready()
    where = f"UI: {server.ui_url}" if server.services else server.url
    report.done(f"Prefect server ready ({where}); it stops with this command")
    # Flow-run heartbeats let a server's services mark a crashed run; a temporary server without
    # services cannot, and each flow run's end waits up to a second for its heartbeat thread
    # (Prefect 3.8 sleeps it in 1 s steps): two flow runs (the detection flow, its scoring subflow).
    no_heartbeats = {} if server.services else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings({PREFECT_API_URL: server.url, **no_heartbeats}):
        yield


def start_temporary_server(*, services: bool) -> TemporaryServer:
    """Start a temporary server (not yet ready: call `wait_ready`) that stops when this process
    exits. At exit, not sooner: Prefect sends its last logs and events to the API from its own exit
    handlers, and ours, registered before Prefect is imported, runs after theirs."""
    server = TemporaryServer(services=services).start()
    atexit.register(server.stop)
    return server


# What `prefect server start --no-services --no-ui` runs, without importing Prefect's CLI first.
_WEBSERVER_ONLY = (
    "import prefect, uvicorn; from prefect.server.api.server import create_app; "
    "uvicorn.run(create_app(final=True, webserver_only=True), host='127.0.0.1', port={port}, log_level='warning')"
)
# A one-shot run's server: no UI, no telemetry; block types are registered by whichever server
# saves a block (and a fresh temporary server holds none to load).
_ONE_SHOT_SETTINGS = {
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
}


def running_api_url(*, timeout: float = 1.0) -> str | None:
    """An API to reuse: PREFECT_API_URL when set (not checked: Prefect reports its own errors);
    else the active profile's PREFECT_API_URL when its health check answers within `timeout`;
    else None. Read from the profiles file, without importing Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    url = _profile_api_url()
    if not url:
        return None
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return url if response.status == 200 else None
    except (OSError, ValueError):
        return None


def _profile_api_url() -> str | None:
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _end_with_parent(parent: int) -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
