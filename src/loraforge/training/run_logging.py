"""Routing a run's log lines into its ``logs.txt`` while it runs.

transformers' own console handler and progress bars are switched off for the run so the
console shows only our progress bar; everything they say still reaches logs.txt.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loraforge.monitoring.logs import PlainFormatter

CAPTURED = ("loraforge", "transformers", "peft", "accelerate", "py.warnings")


@contextmanager
def run_log_file(path: Path) -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    handler = logging.FileHandler(path, encoding="utf-8")
    # Plain text without terminal codes: transformers colours its load report for a terminal.
    handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger(name) for name in CAPTURED]
    previous_levels = {lg.name: lg.level for lg in loggers}
    for lg in loggers:
        lg.addHandler(handler)
    logging.getLogger("loraforge").setLevel(logging.INFO)
    progress_bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_default_handler()
    hf_logging.disable_progress_bar()
    # A worker already routes warnings into its JSON log: leave that on after the run.
    capturing = warnings.showwarning is getattr(logging, "_showwarning", None)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(capturing)
        hf_logging.enable_default_handler()
        if progress_bars:
            hf_logging.enable_progress_bar()
        for lg in loggers:
            lg.removeHandler(handler)
            lg.setLevel(previous_levels[lg.name])
        handler.close()
