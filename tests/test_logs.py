"""The services' logs are JSON lines, as README says, and a run's logs.txt is plain text:
no terminal colour codes, no library banners, Python warnings as log lines."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loraforge.monitoring.logs import JsonFormatter

LORAFORGE = Path(sys.executable).with_name("loraforge")


def record(msg: str, *args, **extra) -> logging.LogRecord:
    made = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_no_terminal_colours_and_a_z_time():
    # uvicorn's start-up line carries a coloured copy of itself for terminals.
    line = json.loads(
        JsonFormatter("api").format(
            record(
                "Started server process [%d]",
                4242,
                color_message="Started server process [\x1b[36m%d\x1b[0m]",
            )
        )
    )
    assert line["msg"] == "Started server process [4242]"
    assert "color_message" not in line
    assert line["ts"].endswith("Z")
    # transformers' load report is bold on a terminal.
    bold = JsonFormatter("worker").format(record("\x1b[1mBertForSequenceClassification\x1b[0m"))
    assert json.loads(bold)["msg"] == "BertForSequenceClassification"
    assert "\x1b" not in bold and "\\u001b" not in bold


def test_python_warnings_become_json_warning_lines():
    script = (
        "import warnings\n"
        "from loraforge.monitoring import logs\n"
        "logs.configure('worker')\n"
        "warnings.warn('running as root is not recommended', UserWarning)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(text) for text in done.stderr.splitlines()]
    assert line["level"] == "warning" and line["logger"] == "py.warnings"
    assert "UserWarning: running as root is not recommended" in line["msg"]


@pytest.mark.slow
def test_the_worker_logs_json_lines_only(tmp_path):
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "LORAFORGE_RESULTS_DIR": str(tmp_path / "r"),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:  # as `loraforge up` runs it: stdout and stderr in one file
        worker = subprocess.Popen(
            [str(LORAFORGE), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 90
            while " ready." not in (text := log.read_text()):
                assert worker.poll() is None, text
                assert time.monotonic() < deadline, text
                time.sleep(0.3)
        finally:
            # (Stopped, Celery writes "worker: Warm shutdown" as plain text, unconditionally:
            # README says a library's start or stop line may be plain text.)
            worker.terminate()
            worker.wait(timeout=30)
    assert "celery@" not in text and "[queues]" not in text  # Celery's banner
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(line["service"] == "worker" for line in lines)
    if os.geteuid() == 0:  # Celery warns about running as root: a warning line, not raw text
        [security] = [line for line in lines if "superuser privileges" in line["msg"]]
        assert security["level"] == "warning"


def test_a_runs_logs_txt_has_no_terminal_codes(tmp_path):
    from loraforge.training.run_logging import run_log_file

    path = tmp_path / "logs.txt"
    with run_log_file(path):
        logging.getLogger("transformers.modeling_utils").warning(
            "\x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m from: x"
        )
    text = path.read_text()
    assert "BertForSequenceClassification LOAD REPORT from: x" in text
    assert "\x1b" not in text and "[1m" not in text
