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
    port, ui_port = free_port(), free_port()
    up = subprocess.Popen(
        [str(LORAFORGE), "up", "--api-port", str(port), "--ui-port", str(ui_port)],
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
    # The URLs come once the UI answers too; the libraries' chatter is in the logs.
    assert httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health").status_code == 200
    printed = "".join(lines)
    for chatter in ("Uvicorn running", "You can now view your Streamlit app", "celery@"):
        assert chatter not in printed
    logs = tmp_path / "state" / "logs"
    assert "You can now view your Streamlit app" in (logs / "ui.log").read_text()
    assert all((logs / f"{name}.log").is_file() for name in ("api", "worker"))
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
    assert len(children) == 3  # API, worker, web UI
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


@pytest.mark.slow
def test_up_names_the_api_when_its_port_is_taken(tmp_path):
    env = {**os.environ, "LORAFORGE_DATA_DIR": str(tmp_path / "state")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(LORAFORGE), "up", "--api-port", str(port), "--ui-port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: the API exited with code 3 while starting; the end of its log:" in done.stderr
    assert "address already in use" in done.stderr
    assert f"hint: The whole log: {tmp_path / 'state' / 'logs' / 'api.log'}" in done.stderr


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
    access = [
        json.loads(line)
        for line in api.stderr.read().splitlines()
        if line.startswith("{") and '"http.request"' in line
    ]
    assert access
    assert access[0]["msg"] == "GET /health 200"
    assert access[0]["service"] == "api"
