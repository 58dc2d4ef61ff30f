"""Bad input fails fast and leaves nothing behind.

`data validate missing.csv` used to import transformers (seconds) before looking at the
file, and `train` with a missing data file took an experiment id, wrote a failed row and a
`results/*.failed/` folder. Each command runs here in a fresh process that reports, at
exit, which heavy libraries it imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loraforge.config import config_from_tree
from loraforge.data.files import DATA_SUFFIXES, check_readable
from loraforge.data.loading import FORMATS
from loraforge.errors import ConfigError, DatasetError
from loraforge.training.preflight import check_inputs

HEAVY = ("torch", "transformers", "peft", "mlflow", "pandas")
PROBE = f"""
import atexit, sys
atexit.register(lambda: sys.stderr.write(
    "\\nimported: " + ",".join(m for m in {HEAVY!r} if m in sys.modules) + "\\n"))
from loraforge.cli.app import app
sys.argv[0] = "loraforge"
app()
"""


def loraforge(tmp_path: Path, *args: str, stdin: str = "") -> tuple[int, str, list[str]]:
    """(exit code, stdout and stderr, heavy modules imported) of one CLI run in a fresh
    process."""
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "LORAFORGE_RESULTS_DIR": str(tmp_path / "results"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _, _, imported = done.stderr.rpartition("imported: ")
    output = done.stdout + done.stderr
    return done.returncode, output, [m for m in imported.strip().split(",") if m]


def assert_nothing_recorded(tmp_path: Path) -> None:
    assert not (tmp_path / "results").exists()  # no results/<id>.failed/
    assert not (tmp_path / "state").exists()  # no database, hence no experiment row


@pytest.mark.parametrize(
    "args",
    [
        ["data", "validate", "missing.csv"],
        ["data", "analyze", "missing.csv"],
        ["predict", "--file", "missing.txt", "--experiment", "x"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_missing_input_file_fails_before_anything_heavy(tmp_path, args):
    code, stderr, imported = loraforge(tmp_path, *args)
    assert code == 2
    assert "error: missing." in stderr and "does not exist" in stderr
    assert imported == []
    assert_nothing_recorded(tmp_path)


def test_train_with_a_missing_data_file_fails_fast_and_records_nothing(tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        yaml.safe_dump({"experiment_name": "x", "data": {"train_file": "missing.csv"}})
    )
    code, stderr, imported = loraforge(tmp_path, "train", "cfg.yaml")
    assert code == 2
    assert "error: data.train_file missing.csv does not exist" in stderr
    assert not {"torch", "transformers", "mlflow"} & set(imported)
    assert_nothing_recorded(tmp_path)


def test_train_with_a_missing_eval_file_or_model_folder_records_nothing(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\na,x\nb,y\n")
    tree = {"experiment_name": "x", "data": {"train_file": "t.csv", "eval_file": "e.csv"}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(tree))
    code, stderr, _ = loraforge(tmp_path, "train", "cfg.yaml")
    assert code == 2 and "data.eval_file e.csv does not exist" in stderr
    code, stderr, _ = loraforge(
        tmp_path,
        "train",
        "cfg.yaml",
        "--set",
        "data.eval_file=null",
        "--set",
        "model.base_model=./no-such-model",
    )
    assert code == 2 and "base model folder ./no-such-model does not exist" in stderr
    assert_nothing_recorded(tmp_path)


def test_validate_refuses_bad_content_without_loading_a_tokenizer(tmp_path):
    (tmp_path / "one-class.csv").write_text("text,label\na,pos\nb,pos\n")
    code, output, imported = loraforge(tmp_path, "data", "validate", "one-class.csv")
    assert code == 2 and "at least 2 classes" in output
    assert "transformers" not in imported


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("folder", None, "is not a file"),
        ("empty.csv", "", "is empty"),
        ("data.xlsx", "x", "unsupported file type '.xlsx'"),
    ],
)
def test_check_readable_says_what_is_wrong(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        check_readable(path)


def test_check_readable_knows_the_formats_the_loader_reads():
    assert set(DATA_SUFFIXES) == set(FORMATS)


def test_check_inputs_is_usable_without_the_cli(tmp_path, data_files):
    tree = {"experiment_name": "x", "data": {"train_file": str(data_files["train"])}}
    check_inputs(config_from_tree(tree, source="t"))  # all there: no error
    tree["data"]["eval_file"] = str(tmp_path / "gone.csv")
    with pytest.raises(DatasetError, match=r"data\.eval_file .*gone\.csv does not exist"):
        check_inputs(config_from_tree(tree, source="t"))
    tree["data"].pop("eval_file")
    tree["model"] = {"base_model": str(tmp_path / "no-model")}
    with pytest.raises(ConfigError):
        check_inputs(config_from_tree(tree, source="t"))
