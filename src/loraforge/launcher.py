"""`loraforge up`: the API, a worker, the web UI and the MLflow UI as child processes,
stopped together.

The children write to log files (``<data dir>/logs/api.log``, ``worker.log``, ``ui.log``,
``mlflow.log``),
not to the terminal: uvicorn's, Celery's, Streamlit's and MLflow's banners and warnings
would bury the one thing a person needs, the URLs, which are printed last, once the API
and the UI answer their health checks. A child that dies is named, with its log's tail.
A port already in use (often by another `up`) is refused before anything starts, so the
health checks are only ever answered by our own children.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from loraforge.errors import InvalidRequest, LoraforgeError

STOP_GRACE_S = 15.0
START_TIMEOUT_S = 120.0  # Streamlit alone takes several seconds on a busy laptop
TAIL_LINES = 20


def _command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("loraforge")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-c", "from loraforge.cli import app; app()", *args]


@dataclass
class Child:
    """One process of `up`: what it is called, how to start it, where its output goes."""

    title: str  # "the API", in messages
    command: list[str]
    log_path: Path
    health_url: str | None = None  # answered with 200 once it serves; None: being alive is all
    env: dict[str, str] | None = None  # None: this process's environment
    process: subprocess.Popen | None = None
    log_offset: int = 0  # where this run's output starts in the (appended) log
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.log_offset = self._log.tell()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def healthy(self) -> bool:
        if self.health_url is None:
            return True
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines this run wrote to the log (earlier runs' lines are left out)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def failure(self, what: str) -> LoraforgeError:
        tail = self.tail()
        shown = f"; the end of its log:\n{tail}" if tail else " (its log is empty)"
        return LoraforgeError(f"{self.title} {what}{shown}", hint=f"The whole log: {self.log_path}")

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()


def port_taken(host: str, port: int) -> bool:
    """True if something already listens on ``host:port`` (tried by binding it, as the
    servers will; SO_REUSEADDR as they set it, so a port a just-stopped run left in
    TIME_WAIT counts as free)."""
    if port == 0:  # any free port: nothing to clash with
        return False
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False  # an address that does not resolve: the server says so in its log
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    return True
    return False


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """Refuse before anything starts when a port is taken: otherwise the one holding it
    (often another `loraforge up`) would answer our health checks, the URLs would be
    printed as if all were well, and only then would our own server die on the port.
    ``ports`` maps an option's name ("api" for --api-port) to its port."""
    for port in [p for p in dict.fromkeys(ports.values()) if p]:
        sharing = [name for name, chosen in ports.items() if chosen == port]
        if len(sharing) > 1:
            raise InvalidRequest(
                f"{' and '.join(f'--{name}-port' for name in sharing)} are the same port "
                f"({port}): each service needs its own"
            )
    taken = {name: port for name, port in ports.items() if port_taken(host, port)}
    if not taken:
        return
    numbers = [str(port) for port in taken.values()]
    where = f"port {numbers[0]} is" if len(numbers) == 1 else f"ports {' and '.join(numbers)} are"
    options = " / ".join(f"--{name}-port" for name in taken)
    raise InvalidRequest(
        f"{where} already in use (another `loraforge up`?): stop it or pass {options}"
    )


def wait_until_healthy(
    children: list[Child],
    *,
    timeout_s: float = START_TIMEOUT_S,
    should_stop: Callable[[], bool] = lambda: False,
) -> bool:
    """True once every child with a health URL answers it; False if asked to stop first.
    A child that exits, or a health URL not answered in time, raises with its log's tail."""
    deadline = time.monotonic() + timeout_s
    waiting = [c for c in children if c.health_url]
    while waiting:
        if should_stop():
            return False
        for child in children:
            if child.exited():
                raise child.failure(f"exited with code {child.process.returncode} while starting")
        waiting = [c for c in waiting if not c.healthy()]
        if waiting and time.monotonic() > deadline:
            late = waiting[0]
            raise late.failure(f"did not answer {late.health_url} within {timeout_s:.0f} s")
        if waiting:
            time.sleep(0.2)
    return True


def ui_command(*, host: str, port: int, api_url: str | None) -> tuple[str, list[str], dict]:
    """``streamlit run`` of the UI's entry point, as (program, argv, environment) for exec."""
    import os

    import loraforge.ui

    entry_point = Path(loraforge.ui.__file__).with_name("app.py")  # a script: never imported
    environment = dict(os.environ)
    if api_url:
        environment["LORAFORGE_API_URL"] = api_url
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(entry_point),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # No "You can now view your Streamlit app" banner: ui.log is for JSON lines.
        "--logger.hideWelcomeMessage",
        "true",
        "--client.toolbarMode",
        "viewer",
        # Uploads are checked again (and limited) by the API; this is only Streamlit's own cap.
        "--server.maxUploadSize",
        "200",
    ]
    return sys.executable, argv, environment


@dataclass(frozen=True)
class MlflowUi:
    """The real MLflow UI (``mlflow server``) on loraforge's own stores."""

    port: int
    backend_store_uri: str  # the resolved tracking URI: the store our runs are in
    artifact_root: Path


def mlflow_command(*, host: str, ui: MlflowUi) -> list[str]:
    """``mlflow server`` serving our tracking store and artifacts."""
    script = Path(sys.executable).with_name("mlflow")
    program = [str(script)] if script.is_file() else [sys.executable, "-m", "mlflow"]
    return [
        *program,
        "server",
        "--backend-store-uri",
        ui.backend_store_uri,
        # Our experiments name their artifact folder themselves (tracking/mlflow_bridge);
        # these cover any experiment created in MLflow's own UI, in the same place.
        "--default-artifact-root",
        str(ui.artifact_root),
        "--artifacts-destination",
        str(ui.artifact_root),
        "--host",
        host,
        "--port",
        str(ui.port),
        # One process is plenty for one team browsing runs; the default is 4.
        "--workers",
        "1",
    ]


def run_all(
    *,
    host: str,
    api_port: int,
    ui_port: int,
    broker: str,
    log_dir: Path,
    announce: Callable[[str], None],
    mlflow: MlflowUi | None = None,
) -> int:
    """Start everything, announce the URLs once all answer, wait; Ctrl-C or SIGTERM stops
    all of it. A child that dies (while starting or later) is named with its log's tail.
    ``mlflow``: also start the MLflow UI there (None: not)."""
    ports = {"api": api_port, "ui": ui_port}
    if mlflow is not None:
        ports["mlflow"] = mlflow.port
    check_ports_free(host, ports)
    api_url = f"http://{host}:{api_port}"
    ui_url = f"http://{host}:{ui_port}"
    mlflow_url = f"http://{host}:{mlflow.port}" if mlflow is not None else None
    # The API hands the MLflow UI's address to clients (GET /mlflow): the one started here.
    env = {**os.environ, "LORAFORGE_MLFLOW_UI_URL": mlflow_url} if mlflow_url else None
    children = [
        Child(
            "the API",
            _command("api", "--host", host, "--port", str(api_port)),
            log_dir / "api.log",
            health_url=f"{api_url}/health",
            env=env,
        ),
        Child("the worker", _command("worker"), log_dir / "worker.log", env=env),
        Child(
            "the web UI",
            _command("ui", "--host", host, "--port", str(ui_port), "--api-url", api_url),
            log_dir / "ui.log",
            health_url=f"{ui_url}/_stcore/health",
            env=env,
        ),
    ]
    if mlflow is not None:
        children.append(
            Child(
                "the MLflow UI",
                mlflow_command(host=host, ui=mlflow),
                log_dir / "mlflow.log",
                health_url=f"{mlflow_url}/health",
                # Its job runner (a Huey pool of 10 for GenAI scorers) has nothing to do
                # for us: the UI alone starts faster and holds less memory.
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )
        )
    stopping = {"now": False}

    def request_stop(_signum, _frame) -> None:
        stopping["now"] = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        started = (
            "the API, a worker, the web UI and the MLflow UI"
            if mlflow
            else ("the API, a worker and the web UI")
        )
        announce(f"starting {started} (logs in {log_dir}) …")
        for child in children:
            child.start()
        if wait_until_healthy(children, should_stop=lambda: stopping["now"]):
            announce("")
            announce(f"  web UI   {ui_url}")
            announce(f"  API      {api_url}   (docs: {api_url}/docs)")
            if mlflow_url:
                announce(f"  MLflow   {mlflow_url}")
            announce(f"  worker   1, broker: {broker}")
            announce(f"  logs     {' '.join(str(c.log_path) for c in children)}")
            announce("")
            announce("Ctrl-C stops everything.")
        while not stopping["now"]:
            for child in children:
                if child.exited():
                    error = child.failure(f"exited with code {child.process.returncode}")
                    announce(f"{error.message}\n{error.hint}\nstopping the rest")
                    stopping["now"] = True
                    code = 1
                    break
            time.sleep(0.3)
    finally:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.close_log()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
