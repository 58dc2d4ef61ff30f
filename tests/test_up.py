"""`loraforge up` starts the API and a worker, and Ctrl-C stops them all cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

LORAFORGE = Path(sys.executable).with_name("loraforge")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = free_port()
    up = subprocess.Popen(
        [str(LORAFORGE), "up", "--api-port", str(port)],
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
    assert len(children) == 2
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
