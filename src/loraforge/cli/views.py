"""How results look in a terminal (rich tables); no logic beyond formatting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loraforge.cli.tables import Column, fitted_table
from loraforge.data.validation import ValidationReport
from loraforge.tracking.comparison import Comparison
from loraforge.tracking.experiments import ExperimentRecord


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _language_line(language: dict, coverage: dict | None) -> str:
    line = f"  language {escape(language['words'])}"
    if coverage:
        line += (
            f"; {escape(coverage['base_model'])} reads {1 - coverage['unread_share']:.1%} "
            "of the text"
        )
    return line


def validation(console: Console, report: ValidationReport) -> None:
    if report.ok:
        classes = ", ".join(f"{k} {v}" for k, v in report.label_counts.items())
        console.print(f"[green]✓[/green] {report.source}: {report.rows} rows; {classes}")
        console.print(f"  version {report.version}")
        if report.language:
            console.print(_language_line(report.language, report.coverage), highlight=False)
    else:
        console.print(f"[red]✗[/red] {report.source}: cannot be used for training")
    for error in report.errors:
        console.print(f"  [red]error[/red]   {error}")
    for warning in report.warnings:
        console.print(f"  [yellow]warning[/yellow] {warning}")


def analysis(console: Console, source: str, result: dict[str, Any]) -> None:
    console.print(f"[bold]{source}[/bold]: {result['rows']} rows, version {fmt(result['version'])}")
    if result.get("language"):
        console.print(_language_line(result["language"], result.get("coverage")), highlight=False)
    labels = Table("label", "rows", "share", title="labels", title_justify="left")
    for label, entry in result["labels"].items():
        labels.add_row(label, str(entry["count"]), f"{entry['share']:.1%}")
    console.print(labels)
    lengths = Table(
        "length", "min", "mean", "median", "p95", "max", title="text length", title_justify="left"
    )
    for unit in ("chars", "tokens"):
        stats = result.get(unit)
        if stats:
            lengths.add_row(unit, *(fmt(stats[k]) for k in ("min", "mean", "median", "p95", "max")))
    console.print(lengths)


# The experiments table, one (header, value) pair per column: a header and its value are
# written side by side, so they cannot drift apart (the id once landed under the last header).
# Listed in the order shown; DROPPED_WHEN_NARROW says which go first when the terminal is
# too narrow to show every value whole.
def _final(r: ExperimentRecord, key: str) -> str:
    return fmt(((r.metrics or {}).get("final") or {}).get(key))


def _status(r: ExperimentRecord) -> str:
    if ((r.metrics or {}).get("quality") or {}).get("learned") is False:
        # Succeeded as a run, but its model is no better than always one answer.
        return "[bold red]did not learn[/bold red]"
    colour = {"succeeded": "green", "failed": "red", "cancelled": "dim"}.get(r.status, "yellow")
    return f"[{colour}]{r.status}[/{colour}]"


EXPERIMENT_COLUMNS: list[tuple[str, Callable[[ExperimentRecord], str]]] = [
    ("id", lambda r: r.id),
    ("status", _status),
    ("base model", lambda r: r.base_model),
    ("train rows", lambda r: fmt(r.train_rows)),
    ("accuracy", lambda r: _final(r, "accuracy")),
    ("macro-F1", lambda r: _final(r, "f1_macro")),
    ("created (UTC)", lambda r: r.created_at.strftime("%Y-%m-%d %H:%M")),
]
DROPPED_WHEN_NARROW = ("train rows", "base model", "created (UTC)", "macro-F1", "accuracy")


def experiment_table(
    console: Console, records: list[ExperimentRecord], *, fit_width: bool = True
) -> None:
    """The experiments, one row each; in a narrow terminal the less important columns are
    left out (and named) rather than shown cut. Not even id and status fit in a table:
    one line each, never broken."""
    fitted_table(
        console,
        [Column(header, value) for header, value in EXPERIMENT_COLUMNS],
        records,
        drop_first=DROPPED_WHEN_NARROW,
        fit_width=fit_width,
        fallback=lambda r: f"{r.id}  {_status(r)}",
    )


def quality_warning(console: Console, quality: dict[str, Any]) -> None:
    """The loud part of a run whose model learned nothing (training/quality.py)."""
    console.print("[bold red]The model learned nothing useful:[/bold red]")
    for problem in quality.get("problems") or []:
        console.print(f"  [red]•[/red] {escape(problem)}")
    if quality.get("hint"):
        console.print(f"  [yellow]{escape(quality['hint'])}[/yellow]")


def experiment_detail(console: Console, r: ExperimentRecord) -> None:
    metrics = r.metrics or {}
    status = escape(r.shown_status)
    shown = f"[bold red]{status}[/bold red]" if r.learned is False else status
    console.print(f"[bold]{r.id}[/bold] ({shown})")
    rows = [
        ("base model", f"{r.base_model} ({fmt(r.language)})"),
        ("device", fmt(r.device)),
        ("train data", f"{fmt(r.train_rows)} rows, version {fmt(r.train_dataset_version)}"),
        ("eval data", f"{fmt(r.eval_rows)} rows, version {fmt(r.eval_dataset_version)}"),
        ("labels", fmt(r.labels)),
        ("results", r.results_dir),
        ("MLflow run", fmt(r.mlflow_run_id)),
    ]
    if r.error:
        rows.append(("error", f"[red]{escape(r.error)}[/red]"))
    final = metrics.get("final")
    if final:
        rows.append(
            ("final", f"accuracy {fmt(final['accuracy'])}, macro-F1 {fmt(final['f1_macro'])}")
        )
        train = metrics["train"]
        rows.append(
            (
                "speed",
                f"{fmt(train['samples_per_second'])} samples/s, {fmt(train['tokens_per_second'])} tokens/s",
            )
        )
    for key, value in rows:
        console.print(f"  {key:<11} {value}")
    quality = metrics.get("quality") or {}
    if quality.get("learned") is False:
        quality_warning(console, quality)
    history = metrics.get("history") or []
    if history:
        table = Table(
            "epoch",
            "step",
            "train loss",
            "eval loss",
            "accuracy",
            "macro-F1",
            title="per epoch",
            title_justify="left",
        )
        for h in history:
            table.add_row(
                f"{h.get('epoch', 0):.2f}",
                fmt(h.get("step")),
                fmt(h.get("train_loss")),
                fmt(h.get("eval_loss")),
                fmt(h.get("eval_accuracy")),
                fmt(h.get("eval_f1_macro")),
            )
        console.print(table)
    checkpoints = metrics.get("checkpoints")
    if checkpoints:
        kept = ", ".join(
            f"{role} {c['checkpoint']} ({fmt(c['metric'])})" for role, c in checkpoints.items()
        )
        console.print(f"  checkpoints {kept}")


def _id_headers(console: Console, ids: list[str], first_width: int) -> list[str]:
    """The ids as column headers when they fit whole side by side; else 1, 2, … with a
    legend printed above the table: a header wrapped mid-id could not be copied."""
    needed = first_width + sum(len(i) for i in ids) + 3 * (len(ids) + 1)
    if needed <= console.width:
        return list(ids)
    for number, experiment_id in enumerate(ids, start=1):
        console.print(f"  [bold]{number}[/bold] = {experiment_id}", soft_wrap=True, highlight=False)
    return [str(number) for number in range(1, len(ids) + 1)]


# The comparison's metric keys (as in --json) as a person reads them, each with the
# format that suits it: scores to 4 decimals, speeds to 1, counts whole with separators.
METRIC_LABELS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "accuracy": ("accuracy", lambda v: f"{v:.4f}"),
    "f1_macro": ("macro-F1", lambda v: f"{v:.4f}"),
    "eval_loss": ("eval loss", lambda v: f"{v:.4f}"),
    "train_loss": ("train loss", lambda v: f"{v:.4f}"),
    "epochs": ("epochs", lambda v: f"{v:g}"),
    "train_only_s": ("training time (s)", lambda v: f"{v:,.1f}"),
    "samples_per_second": ("samples/s", lambda v: f"{v:,.1f}"),
    "tokens_per_second": ("tokens/s", lambda v: f"{v:,.0f}"),
    "trainable_params": ("trainable parameters", lambda v: f"{v:,}"),
}


def _metric_cell(key: str, value: Any) -> str:
    if not isinstance(value, int | float) or key not in METRIC_LABELS:
        return fmt(value)
    return METRIC_LABELS[key][1](value)


def comparison(console: Console, result: Comparison) -> None:
    labels = {key: METRIC_LABELS.get(key, (key,))[0] for key in result.metrics}
    keys = [*result.facts, *result.config_differences, *labels.values(), "config"]
    headers = _id_headers(console, list(result.ids), max(map(len, keys)))
    table = Table("", *headers, title="comparison", title_justify="left")
    for key, values in result.facts.items():
        table.add_row(key, *(fmt(v) for v in values))
    table.add_section()
    if result.config_differences:
        for key, values in result.config_differences.items():
            table.add_row(f"[cyan]{key}[/cyan]", *(fmt(v) for v in values))
    else:
        table.add_row("[cyan]config[/cyan]", *("same" for _ in result.ids))
    table.add_section()
    for key, values in result.metrics.items():
        numbers = [v for v in values if isinstance(v, int | float)]
        best = (
            max(numbers)
            if numbers
            and key in ("accuracy", "f1_macro", "samples_per_second", "tokens_per_second")
            else None
        )
        cells = [_metric_cell(key, v) for v in values]
        table.add_row(
            labels[key],
            *(
                (f"[bold green]{cell}[/bold green]" if v == best and best is not None else cell)
                for v, cell in zip(values, cells, strict=True)
            ),
        )
    console.print(table)
    # After the table, where the eye lands once it has read the numbers they qualify.
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}", highlight=False)
