"""`loraforge up`: the API, a worker and the web UI as child processes, stopped together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from loraforge.errors import LoraforgeError

STOP_GRACE_S = 15.0


def _command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("loraforge")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-c", "from loraforge.cli import app; app()", *args]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LoraforgeError(f"the API exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise LoraforgeError(f"the API did not answer {url}/health within {timeout_s:.0f} s")


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
        "--client.toolbarMode",
        "viewer",
        # Uploads are checked again (and limited) by the API; this is only Streamlit's own cap.
        "--server.maxUploadSize",
        "200",
    ]
    return sys.executable, argv, environment


def run_all(
    *, host: str, api_port: int, ui_port: int, broker: str, announce: Callable[[str], None]
) -> int:
    """Start everything, announce the URLs, wait; Ctrl-C or SIGTERM stops all of it."""
    api_url = f"http://{host}:{api_port}"
    children = [
        subprocess.Popen(_command("api", "--host", host, "--port", str(api_port))),
        subprocess.Popen(_command("worker")),
        subprocess.Popen(
            _command("ui", "--host", host, "--port", str(ui_port), "--api-url", api_url)
        ),
    ]
    stopping = {"now": False}

    def request_stop(_signum, _frame) -> None:
        stopping["now"] = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        wait_until_healthy(api_url, children[0])
        announce(f"web UI  http://{host}:{ui_port}")
        announce(f"API     {api_url}  (docs: {api_url}/docs)")
        announce(f"worker  1, broker: {broker}")
        announce("Ctrl-C stops everything.")
        while not stopping["now"]:
            for child in children:
                if child.poll() is not None:
                    announce(f"a process exited (code {child.returncode}); stopping the rest")
                    stopping["now"] = True
            time.sleep(0.3)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
