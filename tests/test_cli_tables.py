"""The CLI's tables as a person reads them: every value under its own header, ids whole.

`experiments list` once printed each value one column to the left (the id was added
last). These tests render the tables in a subprocess, as in a terminal of a given
width, parse what was printed and compare it with the data (`--json`, the records).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loraforge.cli.app import app
from loraforge.cli.views import fmt
from loraforge.settings import Settings, get_settings
from loraforge.tracking import experiments

LORAFORGE = Path(sys.executable).with_name("loraforge")
runner = CliRunner()

ROWS = [
    # id, status, base model, train rows, accuracy, macro-F1
    ("sentiment-baseline-20261129-120000", "succeeded", "minilm-l6", 4000, 0.9123, 0.8811),
    (
        "sentiment-more-epochs-20261129-130000-2",
        "failed",
        "distilbert-base-uncased",
        None,
        None,
        None,
    ),
    ("x-20261129-140000", "running", "roberta-base", 96, None, None),
]


def parse_tables(output: str) -> list[list[dict[str, str]]]:
    """Every rich table in ``output`` as rows of {header: value}. A cell wrapped over
    several lines is joined; a row starts where its first cell is not empty."""
    tables: list[list[dict[str, str]]] = []
    headers: list[str] | None = None
    rows: list[list[str]] = []

    def cells(line: str, bar: str) -> list[str]:
        return [c.strip() for c in line.strip()[1:-1].split(bar)]

    def join(old: list[str], new: list[str]) -> list[str]:
        return [f"{a} {b}".strip() for a, b in zip(old, new, strict=True)]

    for line in output.splitlines():
        if line.startswith("┏"):
            headers, rows = None, []
        elif line.startswith("┃"):
            values = cells(line, "┃")
            headers = values if headers is None else join(headers, values)
        elif line.startswith("│"):
            values = cells(line, "│")
            if values[0] or not rows:
                rows.append(values)
            else:
                rows[-1] = join(rows[-1], values)
        elif line.startswith("└") and headers is not None:
            tables.append([dict(zip(headers, row, strict=True)) for row in rows])
    return tables


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> dict[str, str]:
    """A data directory holding experiments with distinct values in every column."""
    root = tmp_path_factory.mktemp("listed")
    url = Settings(data_dir=root / "state").resolved_database_url()
    for id_, status, base_model, train_rows, accuracy, f1 in ROWS:
        experiments.create(
            url,
            id=id_,
            name=id_.split("-2026")[0],
            base_model=base_model,
            config={},
            results_dir=str(root / id_),
            train_rows=train_rows,
        )
        if status == "succeeded":
            metrics = {"final": {"accuracy": accuracy, "f1_macro": f1}}
            experiments.mark_succeeded(url, id_, metrics=metrics, results_dir=str(root / id_))
        elif status == "failed":
            experiments.mark_failed(url, id_, error="boom", results_dir=str(root / id_))
    return {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(root / "state"),
        "LORAFORGE_RESULTS_DIR": str(root / "results"),
    }


def list_in_terminal(env: dict[str, str], columns: int) -> str:
    done = subprocess.run(
        [str(LORAFORGE), "experiments", "list"],
        env={**env, "COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def expected_rows(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """What each column should show, from `--json` (the data, as the CLI reads it)."""
    done = subprocess.run(
        [str(LORAFORGE), "experiments", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = {}
    for r in json.loads(done.stdout):
        final = (r["metrics"] or {}).get("final", {})
        out[r["id"]] = {
            "id": r["id"],
            "status": r["status"],
            "base model": r["base_model"],
            "train rows": fmt(r["train_rows"]),
            "accuracy": fmt(final.get("accuracy")),
            "macro-F1": fmt(final.get("f1_macro")),
            "created (UTC)": r["created_at"][:16].replace("T", " "),
        }
    return out


def test_experiments_list_shows_each_value_under_its_header(listed):
    expected = expected_rows(listed)
    assert len(expected) == len(ROWS)
    [table] = parse_tables(list_in_terminal(listed, 200))
    assert [row["id"] for row in table] == list(expected)  # newest first, as --json
    for row in table:
        assert row == expected[row["id"]]


@pytest.mark.parametrize("columns", [100, 80, 60])
def test_experiments_list_in_a_narrow_terminal_keeps_ids_whole(listed, columns):
    expected = expected_rows(listed)
    output = list_in_terminal(listed, columns)
    [table] = parse_tables(output)
    for line in output.splitlines():
        if line[:1] in "┏┃┡│└":
            assert len(line) <= columns, line
    for row in table:
        # Every id whole on one line (copyable), every value shown is the right one.
        assert row["id"] in expected
        assert any(row["id"] in line for line in output.splitlines())
        assert {"id", "status"} <= row.keys()
        assert row == {header: expected[row["id"]][header] for header in row}
    if len(table[0]) < 7:
        assert "terminal too narrow" in output and "--json shows all" in output


def test_experiments_list_narrower_than_an_id_prints_one_line_each(listed):
    output = list_in_terminal(listed, 30)
    for id_, status, *_ in ROWS:
        assert f"{id_}  {status}" in output.splitlines()


def test_experiments_list_piped_keeps_every_column(listed):
    # `loraforge experiments list > file` or `| grep`: no terminal, no width to fit.
    env = {k: v for k, v in listed.items() if k != "COLUMNS"}
    done = subprocess.run(
        [str(LORAFORGE), "experiments", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "too narrow" not in done.stdout
    expected = expected_rows(listed)
    [table] = parse_tables(done.stdout)
    for row in table:
        assert row == expected[row["id"]]


@pytest.fixture
def cli_env(listed, monkeypatch):
    for key in ("LORAFORGE_DATA_DIR", "LORAFORGE_RESULTS_DIR"):
        monkeypatch.setenv(key, listed[key])
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_models_table_matches_the_catalog():
    from loraforge.models.catalog import CATALOG, available_offline

    result = runner.invoke(app, ["models"], env={"COLUMNS": "400"})
    [table] = parse_tables(result.output)
    assert [row["name"] for row in table] == list(CATALOG)
    for row in table:
        entry = CATALOG[row["name"]]
        assert row == {
            "name": entry.name,
            "language": entry.languages[0]
            if len(entry.languages) == 1
            else f"{len(entry.languages)} languages",
            "offline": "yes" if available_offline(entry) else "no",
            "source": entry.source,
            "description": entry.description,
        }


def test_analysis_tables_match_the_json(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\nI loved it,pos\nawful,neg\nfine enough really,pos\nno,neg\n")
    args = ["data", "analyze", str(data), "--model", str(tmp_path / "no-model")]
    facts = json.loads(runner.invoke(app, [*args, "--json"]).output)
    labels, lengths = parse_tables(runner.invoke(app, args, env={"COLUMNS": "200"}).output)
    assert labels == [
        {"label": label, "rows": str(entry["count"]), "share": f"{entry['share']:.1%}"}
        for label, entry in facts["labels"].items()
    ]
    assert lengths == [
        {
            "length": "chars",
            **{k: fmt(facts["chars"][k]) for k in ("min", "mean", "median", "p95", "max")},
        }
    ]


HISTORY = [
    {
        "epoch": 1.0,
        "step": 10,
        "train_loss": 0.61,
        "eval_loss": 0.55,
        "eval_accuracy": 0.7,
        "eval_f1_macro": 0.65,
    },
    {
        "epoch": 2.0,
        "step": 20,
        "train_loss": 0.41,
        "eval_loss": 0.45,
        "eval_accuracy": 0.8,
        "eval_f1_macro": 0.79,
    },
]
COMPARED = ["detail-a-20261129-150000", "detail-b-20261129-150000"]


@pytest.fixture(scope="module")
def compared(listed) -> list[str]:
    """Two finished experiments with a per-epoch history and one config difference."""
    url = Settings(data_dir=Path(listed["LORAFORGE_DATA_DIR"])).resolved_database_url()
    metrics = {
        "final": {"accuracy": 0.8, "f1_macro": 0.79},
        "train": {"samples_per_second": 12.5, "tokens_per_second": 400.0},
        "history": HISTORY,
    }
    for id_, rank in zip(COMPARED, (8, 16), strict=True):
        experiments.create(
            url,
            id=id_,
            name="detail",
            base_model="minilm-l6",
            config={"lora": {"r": rank}},
            results_dir="/r",
        )
        experiments.mark_succeeded(url, id_, metrics=metrics, results_dir="/r")
    return COMPARED


def test_experiment_detail_and_comparison_tables_match_the_data(cli_env, compared):
    history = HISTORY
    shown = runner.invoke(app, ["experiments", "show", "detail-a-20261129-150000"])
    assert shown.exit_code == 0, shown.output
    [epochs] = parse_tables(shown.output)
    assert epochs == [
        {
            "epoch": f"{h['epoch']:.2f}",
            "step": str(h["step"]),
            "train loss": fmt(h["train_loss"]),
            "eval loss": fmt(h["eval_loss"]),
            "accuracy": fmt(h["eval_accuracy"]),
            "macro-F1": fmt(h["eval_f1_macro"]),
        }
        for h in history
    ]
    ids = compared
    result = runner.invoke(app, ["experiments", "compare", *ids])
    assert result.exit_code == 0, result.output
    [table] = parse_tables(result.output)
    by_key = {row[""]: row for row in table}
    assert by_key["lora.r"] == {"": "lora.r", ids[0]: "8", ids[1]: "16"}


def test_comparison_in_a_narrow_terminal_numbers_the_columns_and_names_each_id(cli_env, compared):
    ids = compared
    result = runner.invoke(app, ["experiments", "compare", *ids], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"  1 = {ids[0]}" in lines and f"  2 = {ids[1]}" in lines
    [table] = parse_tables(result.output)
    assert {row[""]: row for row in table}["lora.r"] == {"": "lora.r", "1": "8", "2": "16"}
