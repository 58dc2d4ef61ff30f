"""What `loraforge up` shows: the URLs last, once the API and the UI answer; the
children's banners and warnings in log files, not the terminal; a child that dies named,
with the tail of its log. The children here are small stand-ins (tests/test_up.py runs
the real ones)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from services import answers, free_port
from typer.testing import CliRunner

from loraforge import launcher
from loraforge.cli.app import app
from loraforge.settings import get_settings

runner = CliRunner()

SERVER = """
import http.server, sys
print("BANNER {role}: Uvicorn-like start-up chatter", flush=True)
print("WARNING {role}: a library warning", file=sys.stderr, flush=True)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", {port}), Health).serve_forever()
"""
SLEEPER = """
import sys, time
print("BANNER {role}: Celery-like start-up chatter", flush=True)
time.sleep({seconds})
print("Traceback (most recent call last):\\nRuntimeError: {role} broke [/x]", file=sys.stderr)
sys.exit(3)
"""


@pytest.fixture
def children(monkeypatch):
    """Replace the API, worker, UI and MLflow UI commands; ``behaviour[role]`` picks each
    one's script: "serve" (answers health checks until stopped) or a number of seconds
    before it dies."""
    behaviour = {"api": "serve", "worker": 600, "ui": "serve", "mlflow": "serve"}

    def command(role: str, *args: str) -> list[str]:
        port = args[args.index("--port") + 1] if "--port" in args else "0"
        how = behaviour[role]
        script = (
            SERVER.format(role=role, port=port)
            if how == "serve"
            else SLEEPER.format(role=role, seconds=how)
        )
        return [sys.executable, "-c", script]

    monkeypatch.setattr(launcher, "_command", command)
    monkeypatch.setattr(
        launcher, "mlflow_command", lambda *, host, ui: command("mlflow", "--port", str(ui.port))
    )
    return behaviour


def stop_when_ready(lines: list[str]):
    def announce(text: str) -> None:
        lines.append(text)
        if "Ctrl-C" in text:  # what a person does next
            os.kill(os.getpid(), signal.SIGTERM)

    return announce


def test_urls_come_last_and_chatter_goes_to_the_logs(children, tmp_path, capfd):
    lines: list[str] = []
    api_port, ui_port = free_port(), free_port()
    code = launcher.run_all(
        host="127.0.0.1",
        api_port=api_port,
        ui_port=ui_port,
        broker="embedded",
        log_dir=tmp_path / "logs",
        announce=stop_when_ready(lines),
    )
    assert code == 0
    printed = "\n".join(lines)
    assert lines[0] == f"starting the API, a worker and the web UI (logs in {tmp_path / 'logs'}) …"
    assert [line for line in lines if line][-5:] == [
        f"  web UI   http://127.0.0.1:{ui_port}",
        f"  API      http://127.0.0.1:{api_port}   (docs: http://127.0.0.1:{api_port}/docs)",
        "  worker   1, broker: embedded",
        "  logs     "
        + " ".join(str(tmp_path / "logs" / f"{n}.log") for n in ("api", "worker", "ui")),
        "Ctrl-C stops everything.",
    ]
    terminal = capfd.readouterr()
    for role in ("api", "worker", "ui"):
        log = (tmp_path / "logs" / f"{role}.log").read_text()
        assert f"BANNER {role}" in log
        assert f"BANNER {role}" not in printed + terminal.out + terminal.err
    assert "WARNING api: a library warning" in (tmp_path / "logs" / "api.log").read_text()
    with pytest.raises(httpx.ConnectError):  # stopped with the rest
        httpx.get(f"http://127.0.0.1:{api_port}/health")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LORAFORGE_DATA_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield tmp_path / "state"
    get_settings.cache_clear()


def test_a_child_dying_while_starting_is_named_with_its_log(children, data_dir):
    children["ui"] = 0.2
    logs = data_dir / "logs"
    logs.mkdir(parents=True)
    (logs / "ui.log").write_text("a line from an earlier run\n")
    api_port = free_port()
    result = runner.invoke(
        app,
        ["up", "--api-port", str(api_port), "--ui-port", str(free_port()), "--no-mlflow"],
    )
    assert result.exit_code == 1, result.output
    assert "error: the web UI exited with code 3 while starting; the end of its log:\n" in (
        result.output
    )
    assert "BANNER ui: Celery-like start-up chatter" in result.output
    assert "RuntimeError: ui broke [/x]" in result.output
    assert "an earlier run" not in result.output  # only this run's lines
    assert f"hint: The whole log: {logs / 'ui.log'}" in result.output
    assert "Ctrl-C stops everything" not in result.output  # no URLs for a failed start
    with pytest.raises(httpx.ConnectError):  # the API was stopped too
        httpx.get(f"http://127.0.0.1:{api_port}/health")


def test_a_second_up_refuses_at_once_when_the_first_holds_the_ports(children, data_dir):
    # The first `up` (here: its stand-ins) answers the health checks on both ports; a
    # second one must not take those answers for its own children's and print the URLs.
    api_port, ui_port = free_port(), free_port()
    first = [
        subprocess.Popen(launcher._command(role, "--port", str(port)))
        for role, port in (("api", api_port), ("ui", ui_port))
    ]
    try:
        for port in (api_port, ui_port):
            deadline = time.monotonic() + 30
            while not answers(port):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        result = runner.invoke(
            app,
            [
                *("up", "--api-port", str(api_port), "--ui-port", str(ui_port)),
                *("--mlflow-port", str(free_port())),
            ],
        )
        assert result.exit_code == 2, result.output
        assert result.output == (
            f"error: ports {api_port} and {ui_port} are already in use (another `loraforge "
            "up`?): stop it or pass --api-port / --ui-port\n"
        )
        assert not (data_dir / "logs").exists()  # nothing was started
        assert all(process.poll() is None for process in first)  # the first runs on
    finally:
        for process in first:
            process.kill()
            process.wait()


def test_the_api_and_the_ui_cannot_share_a_port(children, data_dir):
    port = free_port()
    result = runner.invoke(
        app,
        ["up", "--api-port", str(port), "--ui-port", str(port), "--mlflow-port", str(free_port())],
    )
    assert result.exit_code == 2, result.output
    assert result.output == (
        f"error: --api-port and --ui-port are the same port ({port}): each service needs its own\n"
    )


def test_the_mlflow_ui_starts_with_the_rest_and_is_announced(children, data_dir):
    lines: list[str] = []
    api_port, ui_port, mlflow_port = free_port(), free_port(), free_port()
    logs = data_dir / "logs"
    started: list[list[str]] = []
    real_start = launcher.Child.start

    def start(child):
        started.append([child.title, (child.env or {}).get("LORAFORGE_MLFLOW_UI_URL")])
        real_start(child)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(launcher.Child, "start", start)
        code = launcher.run_all(
            host="127.0.0.1",
            api_port=api_port,
            ui_port=ui_port,
            broker="embedded",
            log_dir=logs,
            announce=stop_when_ready(lines),
            mlflow=launcher.MlflowUi(
                port=mlflow_port, backend_store_uri="sqlite:///x.db", artifact_root=data_dir
            ),
        )
    assert code == 0
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    assert lines[0].startswith("starting the API, a worker, the web UI and the MLflow UI")
    assert f"  MLflow   {mlflow_url}" in lines
    assert any(line.endswith(str(logs / "mlflow.log")) for line in lines if "logs " in line)
    assert "BANNER mlflow" in (logs / "mlflow.log").read_text()
    # The API learns where the MLflow UI is (GET /mlflow hands it out).
    assert ["the API", mlflow_url] in started
    with pytest.raises(httpx.ConnectError):  # stopped with the rest
        httpx.get(f"{mlflow_url}/health")


def test_a_taken_mlflow_port_is_refused_naming_its_option(children, data_dir):
    api_port = free_port()
    result = runner.invoke(
        app,
        [
            *("up", "--api-port", str(api_port), "--ui-port", str(free_port())),
            *("--mlflow-port", str(api_port)),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "--api-port and --mlflow-port are the same port" in result.output


def test_the_mlflow_command_serves_our_stores(tmp_path):
    command = launcher.mlflow_command(
        host="127.0.0.1",
        ui=launcher.MlflowUi(
            port=5123, backend_store_uri="sqlite:////srv/mlflow.db", artifact_root=tmp_path
        ),
    )
    assert command[command.index("server") + 1 :] == [
        "--backend-store-uri",
        "sqlite:////srv/mlflow.db",
        "--default-artifact-root",
        str(tmp_path),
        "--artifacts-destination",
        str(tmp_path),
        "--host",
        "127.0.0.1",
        "--port",
        "5123",
        "--workers",
        "1",
    ]


def test_a_child_dying_later_is_named_and_the_rest_stopped(children, tmp_path):
    children["worker"] = 2.0  # dies after the URLs are out
    lines: list[str] = []
    code = launcher.run_all(
        host="127.0.0.1",
        api_port=free_port(),
        ui_port=free_port(),
        broker="embedded",
        log_dir=tmp_path / "logs",
        announce=lines.append,
    )
    assert code == 1
    assert "Ctrl-C stops everything." in lines
    [death] = [line for line in lines if "exited" in line]
    assert death.startswith("the worker exited with code 3; the end of its log:\n")
    assert "RuntimeError: worker broke [/x]" in death
    assert death.endswith(f"The whole log: {tmp_path / 'logs' / 'worker.log'}\nstopping the rest")
