"""`loraforge up` starts the API and a worker, and Ctrl-C stops them all cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from services import free_port

LORAFORGE = Path(sys.executable).with_name("loraforge")


@pytest.mark.slow
def test_up_serves_and_stops_on_ctrl_c(tmp_path):
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "LORAFORGE_RESULTS_DIR": str(tmp_path / "r"),
    }
    subprocess.run(
        [str(LORAFORGE), "users", "create", "admin", "--admin", "--password-stdin"],
        input="long enough password\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    port, ui_port, mlflow_port = free_port(), free_port(), free_port()
    up = subprocess.Popen(
        [
            str(LORAFORGE),
            *("up", "--api-port", str(port), "--ui-port", str(ui_port)),
            *("--mlflow-port", str(mlflow_port)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    deadline = time.monotonic() + 90
    while not any("Ctrl-C" in line for line in lines):
        assert up.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        lines.append(up.stdout.readline())
    assert any(f"http://127.0.0.1:{port}" in line for line in lines)
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    assert any(f"MLflow   {mlflow_url}" in line for line in lines)
    # The URLs come once the UI answers too; the libraries' chatter is in the logs.
    assert httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health").status_code == 200
    # The real MLflow UI, on our store; the API says where it is.
    assert httpx.get(f"{mlflow_url}/health").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/mlflow").json()["ui_url"] == mlflow_url
    printed = "".join(lines)
    for chatter in ("Uvicorn running", "You can now view your Streamlit app", "celery@"):
        assert chatter not in printed
    logs = tmp_path / "state" / "logs"
    # The logs are JSON lines, no banners (Streamlit's, Celery's) or terminal colours.
    assert "You can now view your Streamlit app" not in (logs / "ui.log").read_text()
    for name in ("api", "worker"):
        text = (logs / f"{name}.log").read_text()
        assert "\x1b" not in text and "color_message" not in text, text
        assert all(json.loads(line)["service"] == name for line in text.splitlines()), text
    assert "superuser privileges" not in (logs / "worker.log").read_text() or os.geteuid() == 0

    # A second `up` on the same ports refuses at once, naming them; the first answers on.
    second = subprocess.run(
        [str(LORAFORGE), "up", "--api-port", str(port), "--ui-port", str(ui_port), "--no-mlflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2, second.stdout + second.stderr
    assert "Ctrl-C" not in second.stdout and "http://" not in second.stdout
    assert (
        f"error: ports {port} and {ui_port} are already in use (another `loraforge up`?): "
        "stop it or pass --api-port / --ui-port"
    ) in second.stderr
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    token = httpx.post(
        f"http://127.0.0.1:{port}/login",
        data={"username": "admin", "password": "long enough password"},
    ).json()["access_token"]
    assert (
        httpx.get(
            f"http://127.0.0.1:{port}/users/me", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    children = subprocess.run(
        ["pgrep", "-P", str(up.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(children) == 4  # API, worker, web UI, MLflow UI
    os.kill(up.pid, signal.SIGINT)
    assert up.wait(timeout=30) == 0
    time.sleep(0.5)
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health")


def test_up_refuses_a_taken_port_before_starting_anything(tmp_path):
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(tmp_path / "state")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                str(LORAFORGE),
                *("up", "--api-port", str(port), "--ui-port", str(free_port())),
                *("--mlflow-port", str(free_port())),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == (
        f"error: port {port} is already in use (another `loraforge up`?): "
        "stop it or pass --api-port\n"
    )
    assert done.stdout == ""  # not even "starting …": nothing was started
    assert not (tmp_path / "state" / "logs").exists()


@pytest.mark.slow
def test_api_with_several_worker_processes_serves_and_logs_json(tmp_path):
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "LORAFORGE_RESULTS_DIR": str(tmp_path / "r"),
    }
    port = free_port()
    api = subprocess.Popen(
        [str(LORAFORGE), "api", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, api.stderr.read()
            assert time.monotonic() < deadline
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.ConnectError:
                time.sleep(0.2)
        workers = subprocess.run(
            ["pgrep", "-P", str(api.pid)], capture_output=True, text=True
        ).stdout.split()
        # uvicorn's supervisor may also hold a resource-tracker child beside the workers.
        assert len(workers) >= 2
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(timeout=30)
    logged = api.stderr.read()
    # JSON lines only: uvicorn's coloured copy of a message ("color_message") is dropped.
    assert "color_message" not in logged and "\x1b" not in logged
    lines = [json.loads(line) for line in logged.splitlines()]
    assert any(line["msg"].startswith("Started server process [") for line in lines)
    access = [line for line in lines if line.get("event") == "http.request"]
    assert access
    assert access[0]["msg"] == "GET /health 200"
    assert access[0]["service"] == "api"
