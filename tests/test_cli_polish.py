"""The command line's own manners: --version, -h everywhere, readable option types,
refused --status values, documented exit codes, and config errors that blame the right
place (the file or the --set) and suggest the key that was meant."""

from __future__ import annotations

import re

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from loraforge import __version__
from loraforge.cli.app import EXIT_CODE_WORDS, EXPERIMENT_STATUSES, app
from loraforge.errors import EXIT_CODES
from loraforge.tracking import experiments

runner = CliRunner()


def command_paths(group=None, prefix=()) -> list[tuple[str, ...]]:
    """Every command and sub-command, as the words typed after `loraforge`."""
    group = group or get_command(app)
    paths = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        paths.append(path)
        if hasattr(command, "commands"):
            paths += command_paths(command, path)
    return paths


def test_version_prints_the_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"loraforge {__version__}"


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_takes_dash_h_and_shows_readable_option_types(path):
    result = runner.invoke(app, [*path, "-h"], env={"COLUMNS": "200"}, prog_name="loraforge")
    assert result.exit_code == 0, result.output
    assert "Usage: loraforge " + " ".join(path) in result.output
    # Options name what they take (N, FILE, ID, KEY=VALUE), not a Python type; flags
    # (--json, --help) take nothing and show nothing.
    for line in result.output.splitlines():
        if re.search(r"│ --", line):
            assert not re.search(r"<(int|str|float|path|bool|text|integer)>", line), line


def test_top_level_help_documents_every_exit_code():
    result = runner.invoke(app, ["-h"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Exit codes" in result.output
    for code in {0, 1, *EXIT_CODES.values()}:
        assert code in EXIT_CODE_WORDS
        assert re.search(rf"^\s*{code}\s+{re.escape(EXIT_CODE_WORDS[code])}", result.output, re.M)


def test_unknown_status_is_refused_with_the_valid_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("LORAFORGE_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["experiments", "list", "--status", "queued"])
    assert result.exit_code == 2
    assert "'queued' is not an experiment status" in result.output
    assert "running, succeeded, failed, cancelled" in result.output
    assert "Value error" not in result.output


def test_the_statuses_offered_are_those_experiments_have():
    assert set(EXPERIMENT_STATUSES) == {
        experiments.RUNNING,
        experiments.SUCCEEDED,
        experiments.FAILED,
        experiments.CANCELLED,
    }


@pytest.fixture
def config_file(tmp_path):
    """A config that is valid, so that any error comes from what a test changes."""

    def write(**sections) -> str:
        tree = {"experiment_name": "x", "data": {"train_file": str(tmp_path / "t.csv")}}
        tree.update(sections)
        path = tmp_path / "my-config.yaml"
        path.write_text(yaml.safe_dump(tree))
        return str(path)

    return write


def train(*args: str):
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_bad_set_value_blames_the_override_not_the_file(config_file):
    output = train(config_file(), "--set", "training.epochs=abc")
    assert "error: --set training.epochs=abc: must be a whole number" in output
    assert "my-config.yaml" not in output


def test_a_bad_value_in_the_file_names_the_file(config_file):
    output = train(config_file(training={"epochs": "abc"}))
    assert "my-config.yaml is not a valid training config" in output
    assert "training.epochs must be a whole number (got 'abc')" in output


def test_problems_in_the_file_and_in_set_are_each_blamed_on_their_source(config_file):
    output = train(config_file(lora={"r": 0}), "--set", "training.batch_size=0")
    assert "my-config.yaml: lora.r must be at least 1" in output
    assert "--set training.batch_size=0: must be at least 1" in output


@pytest.mark.parametrize(
    ("sections", "overrides", "expected"),
    [
        (
            {"lora": {"dropuot": 0.2}},
            [],
            "lora.dropuot is not a known field: did you mean `dropout`?",
        ),
        (
            {},
            ["training.epoch=2"],
            "--set training.epoch=2: is not a known field: did you mean `epochs`?",
        ),
        ({"trainig": {"epochs": 2}}, [], "trainig is not a known field: did you mean `training`?"),
    ],
)
def test_misspelled_keys_get_a_did_you_mean(config_file, sections, overrides, expected):
    args = [a for o in overrides for a in ("--set", o)]
    assert expected in train(config_file(**sections), *args)


def test_an_error_quoting_brackets_is_printed_as_written(config_file):
    # rich would read "[/x]" as a closing tag and fail while printing the error.
    output = train(config_file(), "--set", "training.epochs=[/x]")
    assert "--set training.epochs=[/x]: must be a whole number" in output
