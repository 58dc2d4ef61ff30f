"""The Makefile's serving shortcuts against a real `loraforge serve` process, started as a
user would (`make serve exp=ID`), with JSON log lines for every request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from services import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_serve_and_the_predict_shortcuts(env_settings, tiny_run):
    port = free_port()
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(env_settings.data_dir),
        "LORAFORGE_RESULTS_DIR": str(env_settings.results_dir),
    }
    server = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "serve",
            f"exp={tiny_run.experiment_id}",
            f"SERVE_PORT={port}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.3)

        shortcut = {"SERVE_PORT": str(port)}
        health = _make("predict-health", *(f"{k}={v}" for k, v in shortcut.items()), env=env)
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["status"] == "ok"

        # Quotes, a dollar sign and an apostrophe reach the server as typed.
        typed = 'it\'s "great" for $5'
        text = _make("predict-text", f"SERVE_PORT={port}", f"text={typed}", env=env)
        assert text.returncode == 0, text.stderr
        answer = json.loads(text.stdout)
        assert answer["model"] == tiny_run.experiment_id and len(answer["data"]) == 1
        assert set(answer["data"][0]) == {
            "label",
            "probability",
            "latency_ms",
            "base_model",
            "language",
        }
        for target in ("predict-positive", "predict-negative"):
            done = _make(target, f"SERVE_PORT={port}", env=env)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["data"][0]["label"] in ("positive", "negative")
        empty = _make("predict-text", f"SERVE_PORT={port}", env=env)
        assert empty.returncode != 0 and "no text" in empty.stderr
    finally:
        os.killpg(server.pid, signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    # One JSON line per request: model, status, latency; never the text itself.
    requests = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"predict ' in line
    ]
    assert len(requests) >= 3, output
    assert all({"model", "status", "latency_ms"} <= set(r) for r in requests)
    assert "great" not in output and "tarmac" not in output

    nothing = _make("predict-health", f"SERVE_PORT={free_port()}", env=env)
    assert nothing.returncode != 0 and "make serve" in nothing.stderr
