"""The ``loraforge`` command. Each command parses, calls a service, prints.

User errors (typed ``LoraforgeError``) are turned into a message and an exit code in one
place, ``_Group.invoke``: no user mistake ever shows a Python traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer.core import TyperGroup

from loraforge.errors import EXIT_CODES, DatasetError, LoraforgeError, exit_code_for

# soft_wrap: a message or an id is never broken across lines, even when output is piped.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


class _Group(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LoraforgeError as error:
            errors.print(f"[bold red]error:[/bold red] {error.message}", highlight=False)
            if error.hint:
                errors.print(f"[dim]hint:[/dim] {error.hint}", highlight=False)
            raise typer.Exit(exit_code_for(error)) from None
        except KeyboardInterrupt:
            errors.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    help="loraforge: fine-tune transformers with LoRA, track experiments, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Data sets: demo data, validation, analysis.", no_args_is_help=True)
experiments_app = typer.Typer(help="Browse and compare experiments.", no_args_is_help=True)
users_app = typer.Typer(help="People who can sign in to the API.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(experiments_app, name="experiments")
app.add_typer(users_app, name="users")

TextColumnOpt = Annotated[str, typer.Option("--text-column", help="Column holding the text.")]
LabelColumnOpt = Annotated[str, typer.Option("--label-column", help="Column holding the label.")]
ModelOpt = Annotated[str, typer.Option("--model", help="Base model whose tokenizer counts tokens.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@data_app.command("demo")
def data_demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for train.csv and eval.csv.")] = Path(
        "data/demo"
    ),
    classes: Annotated[
        str, typer.Option(help="Comma-separated: positive,negative,neutral.")
    ] = "positive,negative",
    train_size: Annotated[int, typer.Option(min=10)] = 4000,
    eval_size: Annotated[int, typer.Option(min=10)] = 1000,
) -> None:
    """Write the demo data set (CrowdFlower/Twitter sentiment), stratified, fixed seed."""
    from loraforge.data.demo import write_demo

    wanted = tuple(c.strip() for c in classes.split(",") if c.strip())
    files = write_demo(out, classes=wanted, train_size=train_size, eval_size=eval_size)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(files.label_counts.items()))
    console.print(f"[green]✓[/green] {files.train} ({files.train_rows} rows: {counts})")
    console.print(f"[green]✓[/green] {files.eval} ({files.eval_rows} rows)")


@data_app.command("validate")
def data_validate(
    file: Path,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    max_length: Annotated[
        int, typer.Option(help="Token limit of training; longer texts are truncated.")
    ] = 128,
    model: ModelOpt = "minilm-l6",
    as_json: JsonOpt = False,
) -> None:
    """Check a data set: refuse what cannot be trained on (exit 2), warn about the rest."""
    from loraforge.data.loading import Columns
    from loraforge.data.tokens import token_counter
    from loraforge.data.validation import validate_file

    counter, why_not = token_counter(model)
    report = validate_file(
        file,
        columns=Columns(text_column, label_column),
        max_length=max_length,
        count_tokens=counter,
    )
    if why_not:
        report.warnings.append(why_not)
    if as_json:
        _print_json(report.to_dict())
    else:
        from loraforge.cli import views

        views.validation(console, report)
    if not report.ok:
        raise typer.Exit(EXIT_CODES[DatasetError])


@data_app.command("analyze")
def data_analyze(
    file: Path,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    model: ModelOpt = "minilm-l6",
    as_json: JsonOpt = False,
) -> None:
    """Rows, label distribution and text lengths (characters and tokens)."""
    from loraforge.data.analysis import analyze_frame
    from loraforge.data.loading import Columns, read_table, select_columns
    from loraforge.data.tokens import token_counter

    frame = select_columns(read_table(file), Columns(text_column, label_column), source=str(file))
    counter, why_not = token_counter(model)
    result = analyze_frame(frame, count_tokens=counter)
    if as_json:
        _print_json(result)
        return
    from loraforge.cli import views

    views.analysis(console, str(file), result)
    if why_not:
        console.print(f"[yellow]{why_not}[/yellow]")


@app.command("train")
def train(
    config: Annotated[Path, typer.Argument(help="YAML training config (see configs/demo.yaml).")],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: --set training.epochs=1")
    ] = None,
) -> None:
    """Fine-tune a base model with LoRA; results in results/<experiment_id>/."""
    from loraforge.cli.progress import RichReporter
    from loraforge.config import load_config
    from loraforge.training.runner import run_training

    loaded = load_config(config, overrides or [])
    console.print(
        f"[bold]{loaded.experiment_name}[/bold]: {loaded.model.base_model}, {loaded.data.train_file}"
    )
    result = run_training(loaded, reporter=RichReporter(console))
    final = result.metrics["final"]
    train_stats = result.metrics["train"]
    console.print(
        f"[green]✓[/green] {result.experiment_id}: accuracy {final['accuracy']:.4f}, "
        f"macro-F1 {final['f1_macro']:.4f} "
        f"({train_stats['samples_per_second']:.1f} samples/s on {result.metrics['device']}, "
        f"{result.metrics['precision']})"
    )
    kept = ", ".join(
        f"{role}={c['checkpoint']}" for role, c in result.metrics["checkpoints"].items()
    )
    console.print(f"  results     {result.results_dir}")
    console.print(f"  checkpoints {kept}")
    console.print(f"  MLflow run  {result.mlflow_run_id}")


@app.command("models")
def models() -> None:
    """The base-model catalog (any Hugging Face id or local folder works too)."""
    from rich.table import Table

    from loraforge.models.catalog import CATALOG

    table = Table("name", "language", "source", "description")
    for entry in CATALOG.values():
        table.add_row(entry.name, entry.language, entry.source, entry.description)
    console.print(table)


def _db_url() -> str:
    from loraforge.settings import get_settings

    return get_settings().resolved_database_url()


@experiments_app.command("list")
def experiments_list(
    status: Annotated[str | None, typer.Option(help="running, succeeded or failed")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """Experiments, newest first."""
    from dataclasses import asdict

    from loraforge.tracking.experiments import list_experiments

    records = list_experiments(_db_url(), status=status, limit=limit)
    if as_json:
        _print_json([asdict(r) for r in records])
        return
    from loraforge.cli import views

    views.experiment_table(console, records)


@experiments_app.command("show")
def experiments_show(
    experiment_id: Annotated[str, typer.Argument(help="An id, or 'latest'.")],
    as_json: JsonOpt = False,
) -> None:
    """One experiment: data, metrics per epoch, checkpoints, where its files are."""
    from dataclasses import asdict

    from loraforge.tracking.experiments import get

    record = get(_db_url(), experiment_id)
    if as_json:
        _print_json(asdict(record))
        return
    from loraforge.cli import views

    views.experiment_detail(console, record)


@experiments_app.command("compare")
def experiments_compare(
    experiment_ids: Annotated[list[str], typer.Argument(help="Two or more ids.")],
    as_json: JsonOpt = False,
) -> None:
    """Experiments side by side: config differences and metrics."""
    from dataclasses import asdict

    from loraforge.tracking.comparison import compare
    from loraforge.tracking.experiments import get

    if len(experiment_ids) < 2:
        raise typer.BadParameter("name at least two experiments")
    result = compare([get(_db_url(), i) for i in experiment_ids])
    if as_json:
        _print_json(asdict(result))
        return
    from loraforge.cli import views

    views.comparison(console, result)


@app.command("predict")
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    experiment: Annotated[
        str, typer.Option("--experiment", "-e", help="An id, or 'latest'.")
    ] = "latest",
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="A file with one text per line ('-': stdin)."),
    ] = None,
) -> None:
    """Classify texts with a fine-tuned experiment; one JSON object per text."""
    from loraforge.inference.predictor import Predictor, final_model_dir
    from loraforge.tracking.experiments import SUCCEEDED, get

    given = list(texts or [])
    if file is not None:
        given += _read_lines(file)
    if not given:
        raise typer.BadParameter("give texts as arguments or with --file")
    record = get(_db_url(), experiment)
    if record.status != SUCCEEDED:
        raise DatasetError(
            f"experiment {record.id} has status {record.status}; only a succeeded one has a model"
        )
    predictor = Predictor(final_model_dir(Path(record.results_dir)))
    for prediction in predictor.predict(given):
        typer.echo(json.dumps(prediction.to_dict(), ensure_ascii=False))


def _read_lines(file: Path) -> list[str]:
    if str(file) == "-":
        return [line.strip() for line in sys.stdin if line.strip()]
    if not file.is_file():
        raise DatasetError(f"{file} does not exist")
    try:
        content = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{file} is not UTF-8 text") from None
    return [line.strip() for line in content.splitlines() if line.strip()]


@users_app.command("create")
def users_create(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user (the first admin, typically); the password is prompted for or read from stdin."""
    from sqlalchemy.orm import sessionmaker

    from loraforge.audit import log as audit
    from loraforge.auth import users
    from loraforge.db.engine import get_engine

    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with sessionmaker(bind=get_engine(_db_url()))() as session:
        user = users.create_user(
            session, username=username, password=password, role="admin" if admin else "user"
        )
        audit.record(
            session,
            action="user.create",
            outcome=audit.SUCCESS,
            username=username,
            target=f"user:{user.id}",
            client="cli",
            detail={"role": user.role},
        )
        session.commit()
    console.print(f"[green]✓[/green] user {user.username} ({user.role}) created, id {user.id}")


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes sharing the port (about one per core).")
    ] = 1,
) -> None:
    """Run the HTTP API (FastAPI on uvicorn); OpenAPI docs at /docs."""
    import uvicorn

    from loraforge.api.app import create_app
    from loraforge.monitoring import logs

    logs.configure("api")
    # Settings and migrations: fail here, with the reason, rather than in every process.
    create_app()
    uvicorn.run(
        "loraforge.api.app:create_service_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@app.command("worker")
def worker(
    concurrency: Annotated[
        int, typer.Option(help="Jobs run at once (each trains on all cores).")
    ] = 1,
) -> None:
    """Run a Celery worker that trains queued jobs, and reaps jobs whose worker died."""
    from loraforge.jobs.worker import run_worker
    from loraforge.settings import get_settings

    run_worker(get_settings(), concurrency=concurrency)


@app.command("ui")
def ui(
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    api_url: Annotated[
        str | None, typer.Option(help="The API the UI talks to; default LORAFORGE_API_URL.")
    ] = None,
) -> None:
    """Run the web UI (Streamlit); it talks to the API over HTTP only."""
    from loraforge.launcher import ui_command

    os.execvpe(*ui_command(host=host, port=port, api_url=api_url))


@app.command("up")
def up(
    api_port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    ui_port: Annotated[int, typer.Option(help="Port of the web UI.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start the API, a worker and the web UI on the configured (by default embedded)
    services; Ctrl-C stops all."""
    from loraforge.launcher import run_all
    from loraforge.settings import get_settings

    settings = get_settings()
    broker = settings.broker_url or f"embedded (files under {settings.resolved_broker_dir()})"
    code = run_all(
        host=host, api_port=api_port, ui_port=ui_port, broker=broker, announce=console.print
    )
    raise typer.Exit(code)
