"""prometheus_client's multiprocess mode for ``loraforge api --workers N``.

Each API process writes its counters to memory-mapped files in one folder; a scrape,
whichever process answers it, sums them. The folder must be empty when the processes
start (stale files from an earlier run would count twice): a fresh temporary folder,
removed at exit, unless ``PROMETHEUS_MULTIPROC_DIR`` names one (e.g. a Kubernetes
emptyDir), which is then emptied of its ``*.db`` files first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from loraforge.monitoring.metrics import MULTIPROC_ENV


def prepare_multiprocess_dir() -> Path:
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return folder
    folder = Path(tempfile.mkdtemp(prefix="loraforge-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)  # inherited by the processes uvicorn starts
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
