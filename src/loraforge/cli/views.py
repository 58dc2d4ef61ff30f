"""How results look in a terminal (rich tables); no logic beyond formatting."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

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


def validation(console: Console, report: ValidationReport) -> None:
    if report.ok:
        classes = ", ".join(f"{k} {v}" for k, v in report.label_counts.items())
        console.print(f"[green]✓[/green] {report.source}: {report.rows} rows; {classes}")
        console.print(f"  version {report.version}")
    else:
        console.print(f"[red]✗[/red] {report.source}: cannot be used for training")
    for error in report.errors:
        console.print(f"  [red]error[/red]   {error}")
    for warning in report.warnings:
        console.print(f"  [yellow]warning[/yellow] {warning}")


def analysis(console: Console, source: str, result: dict[str, Any]) -> None:
    console.print(f"[bold]{source}[/bold]: {result['rows']} rows, version {fmt(result['version'])}")
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


def experiment_table(console: Console, records: list[ExperimentRecord]) -> None:
    table = Table(
        "id", "status", "base model", "train rows", "accuracy", "macro-F1", "created (UTC)"
    )
    for r in records:
        final = (r.metrics or {}).get("final", {})
        colour = {"succeeded": "green", "failed": "red"}.get(r.status, "yellow")
        table.add_row(
            f"[{colour}]{r.status}[/{colour}]",
            r.base_model,
            fmt(r.train_rows),
            fmt(final.get("accuracy")),
            fmt(final.get("f1_macro")),
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.id,
        )
    console.print(table)


def experiment_detail(console: Console, r: ExperimentRecord) -> None:
    metrics = r.metrics or {}
    console.print(f"[bold]{r.id}[/bold] ({r.status})")
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
        rows.append(("error", f"[red]{r.error}[/red]"))
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


def comparison(console: Console, result: Comparison) -> None:
    table = Table("", *result.ids, title="comparison", title_justify="left")
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
        table.add_row(
            key,
            *(
                (f"[bold green]{fmt(v)}[/bold green]" if v == best and best is not None else fmt(v))
                for v in values
            ),
        )
    console.print(table)
