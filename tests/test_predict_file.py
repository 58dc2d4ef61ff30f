"""`predict --file`: one answer per input line, in order, each echoing its text and line.

Blank lines used to be skipped silently, so every answer after one belonged to the wrong
line of the file.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from loraforge.cli.app import app

runner = CliRunner()

LINES = [
    "good great flight",
    "",
    "awful terrible service",
    "   ",
    "the food was nice\u2028really",  # a line separator inside a text is not a line end
    "bad\fboring",  # nor is a form feed
]


def answers(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def check_one_answer_per_line(got: list[dict]) -> None:
    assert [a["line"] for a in got] == list(range(1, len(LINES) + 1))
    assert [a["text"] for a in got] == LINES
    for answer in got:
        if answer["text"].strip():
            assert answer["label"] in ("positive", "negative")
            assert "error" not in answer
        else:
            assert answer["label"] is None and answer["probability"] is None
            assert answer["error"] == "blank line: nothing to classify"


def test_every_line_of_a_file_gets_its_answer_in_order(tiny_run, env_settings, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_bytes("\r\n".join(LINES).encode() + b"\r\n")  # Windows line endings too
    result = runner.invoke(
        app, ["predict", "--experiment", tiny_run.experiment_id, "--file", str(texts)]
    )
    assert result.exit_code == 0, result.output
    check_one_answer_per_line(answers(result.stdout))


def test_stdin_lines_are_answered_the_same_way(tiny_run, env_settings):
    result = runner.invoke(
        app,
        ["predict", "--experiment", tiny_run.experiment_id, "--file", "-"],
        input="\n".join(LINES),  # no newline after the last line
    )
    assert result.exit_code == 0, result.output
    check_one_answer_per_line(answers(result.stdout))


def test_texts_given_as_arguments_are_echoed(tiny_run, env_settings):
    result = runner.invoke(
        app, ["predict", "--experiment", tiny_run.experiment_id, "good great", "awful bad"]
    )
    assert result.exit_code == 0, result.output
    got = answers(result.stdout)
    assert [a["text"] for a in got] == ["good great", "awful bad"]
    assert all("line" not in a and a["label"] in ("positive", "negative") for a in got)
