"""The ``loraforge`` command. Each command parses, calls a service, prints.

User errors (typed ``LoraforgeError``) are turned into a message and an exit code in one
place, ``_Group.invoke``: no user mistake ever shows a Python traceback.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from loraforge.errors import EXIT_CODES, DatasetError, LoraforgeError, exit_code_for

HELP_OPTION_NAMES = ["-h", "--help"]

# soft_wrap: a message or an id is never broken across lines, even when output is piped.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def _quiet_flags(command, name: str = "loraforge") -> None:
    """Typer shows "<bool>" beside every flag (--json, --yes, --help), as if it took a
    value. Cleared here for every command's flags, those added later included."""
    help_option = command.get_help_option(
        typer.Context(command, info_name=name, help_option_names=HELP_OPTION_NAMES)
    )
    for param in [*command.params, help_option]:
        if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    if command.help:
        command.help = _reflowed(command.help)
    for sub_name, sub in (getattr(command, "commands", None) or {}).items():
        _quiet_flags(sub, sub_name)


def _reflowed(text: str) -> str:
    """A docstring's paragraphs each on one line. Typer joins the lines of the first
    paragraph only; the others kept the docstring's breaks and wrapped again inside
    them, leaving half-empty lines in --help."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    # A line that starts a list item or is indented stays a line of its own.
    return "\n\n".join(
        p if p.startswith("\b") else re.sub(r"\n(?![-*•]\s|\s)", " ", p) for p in paragraphs
    )


class _Group(TyperGroup):
    def main(self, *args, **kwargs):
        _quiet_flags(self)
        return super().main(*args, **kwargs)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LoraforgeError as error:
            # Escaped: a message may quote brackets ("--set lora.target_modules=[query]", a
            # log line), which rich would take for markup, or fail on, mid-error.
            errors.print(f"[bold red]error:[/bold red] {escape(error.message)}", highlight=False)
            if error.hint:
                errors.print(f"[dim]hint:[/dim] {escape(error.hint)}", highlight=False)
            raise typer.Exit(exit_code_for(error)) from None
        except KeyboardInterrupt:
            errors.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None


# What each exit code means, for the top-level --help. A test checks that every code in
# errors.EXIT_CODES is here, so a new error class cannot go undocumented.
EXIT_CODE_WORDS: dict[int, str] = {
    0: "success",
    1: "another failure (e.g. a service started by `up` stopped), or a bug",
    2: "bad input: a missing or unusable data file, config, base model, option or setting",
    3: "not found: no such experiment, job, data set or registered model",
    4: "forbidden: not yours to use",
    5: "training failed (e.g. out of memory)",
    6: "not signed in, or a wrong password",
    7: "conflict with the current state (e.g. a name that is taken)",
    8: "too many attempts; wait and try again",
    9: "unavailable: a store or server it needs (MLflow) cannot be reached or did not "
    "answer in time; nothing was changed",
    130: "interrupted (Ctrl-C) or cancelled",
}

# Statuses an experiment row can have (tracking/experiments.py; a test keeps them equal).
# Spelled out here so that `loraforge --help` does not import the database layer.
EXPERIMENT_STATUSES = ("running", "succeeded", "failed", "cancelled")


def _epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {words}" for code, words in EXIT_CODE_WORDS.items())
    return f"[bold]Exit codes[/bold]\n{codes}"


def _check_status(value: str | None) -> str | None:
    # A callback rather than a Literal: typer's own choice error reads "Value error, …".
    if value is not None and value not in EXPERIMENT_STATUSES:
        raise typer.BadParameter(
            f"{value!r} is not an experiment status; use one of: {', '.join(EXPERIMENT_STATUSES)}"
        )
    return value


app = typer.Typer(
    cls=_Group,
    help="loraforge: fine-tune transformers with LoRA, track experiments, predict.",
    epilog=_epilog(),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Inherited by every sub-command's context: `loraforge data validate -h` works too.
    context_settings={"help_option_names": HELP_OPTION_NAMES},
)


def _show_version(value: bool) -> None:
    if value:
        from loraforge import __version__

        typer.echo(f"loraforge {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_show_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """loraforge: fine-tune transformers with LoRA, track experiments, predict."""


data_app = typer.Typer(help="Data sets: demo data, validation, analysis.", no_args_is_help=True)
experiments_app = typer.Typer(help="Browse and compare experiments.", no_args_is_help=True)
users_app = typer.Typer(help="People who can sign in to the API.", no_args_is_help=True)
datasets_app = typer.Typer(
    help="Data sets uploaded through the API or web UI (this machine's database).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
app.add_typer(experiments_app, name="experiments")
app.add_typer(datasets_app, name="datasets")
app.add_typer(users_app, name="users")

TextColumnOpt = Annotated[
    str, typer.Option("--text-column", metavar="NAME", help="Column holding the text.")
]
LabelColumnOpt = Annotated[
    str, typer.Option("--label-column", metavar="NAME", help="Column holding the label.")
]
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        metavar="MODEL",
        help="Base model whose tokenizer counts tokens and is checked for coverage "
        "(auto: the catalog model for the data's language).",
    ),
]
DataFileArg = Annotated[
    Path, typer.Argument(metavar="FILE", help="A CSV, TSV, JSONL or Parquet file.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
HostOpt = Annotated[str, typer.Option(metavar="ADDRESS", help="Address to listen on.")]


def _port(words: str) -> typer.models.OptionInfo:
    return typer.Option(metavar="PORT", min=0, max=65535, help=words)


PortOpt = Annotated[int, _port("Port to listen on.")]
ApiPortOpt = Annotated[int, _port("Port of the API.")]
UiPortOpt = Annotated[int, _port("Port of the web UI.")]
MlflowPortOpt = Annotated[int, _port("Port of the MLflow UI.")]


def _json_default(value: object) -> str:
    # Times as the API writes them ("2026-11-29T12:00:00Z"), not str()'s "2026-11-29
    # 12:00:00": everything stored is UTC, SQLite just hands it back without a zone.
    from datetime import UTC, datetime

    from loraforge.monitoring.logs import utc_iso

    if isinstance(value, datetime):
        return utc_iso(value if value.tzinfo else value.replace(tzinfo=UTC))
    return str(value)


def _print_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


@data_app.command("demo")
def data_demo(
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Folder for train.csv and eval.csv.")
    ] = Path("data/demo"),
    classes: Annotated[
        str,
        typer.Option(metavar="A,B,...", help="Comma-separated: positive,negative,neutral."),
    ] = "positive,negative",
    train_size: Annotated[int, typer.Option(min=10, metavar="N", help="Training rows.")] = 4000,
    eval_size: Annotated[int, typer.Option(min=10, metavar="N", help="Evaluation rows.")] = 1000,
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
    file: DataFileArg,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    max_length: Annotated[
        int,
        typer.Option(metavar="N", help="Token limit of training; longer texts are truncated."),
    ] = 128,
    model: ModelOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Check a data set: refuse what cannot be trained on (exit 2), warn about the rest."""
    from loraforge.data.files import check_readable

    check_readable(file)  # a missing file fails here, before pandas or transformers load
    from loraforge.data.loading import COLUMNS_HINTS, Columns
    from loraforge.data.validation import validate_file

    columns = Columns(text_column, label_column)
    counter = _LazyTokenCounter(model)
    report = validate_file(
        file,
        columns=columns,
        max_length=max_length,
        count_tokens=counter,
        columns_hint=COLUMNS_HINTS["cli"],
    )
    if counter.why_not:
        report.warnings.append(counter.why_not)
    if report.ok:
        from loraforge.training.language_check import coverage_for_report

        coverage_for_report(report, file, columns, model)
    if as_json:
        _print_json(report.to_dict())
    else:
        from loraforge.cli import views

        views.validation(console, report)
    if not report.ok:
        raise typer.Exit(EXIT_CODES[DatasetError])


@data_app.command("analyze")
def data_analyze(
    file: DataFileArg,
    text_column: TextColumnOpt = "text",
    label_column: LabelColumnOpt = "label",
    model: ModelOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Rows, label distribution, text lengths (characters and tokens), the data's
    language(s) and how much of it the base model's tokenizer reads."""
    from loraforge.data.files import check_readable

    check_readable(file)  # before pandas and transformers load
    from loraforge.data.analysis import analyze_frame
    from loraforge.data.loading import COLUMNS_HINTS, Columns, read_table, select_columns
    from loraforge.data.tokens import token_counter
    from loraforge.training.language_check import coverage_of

    frame = select_columns(
        read_table(file),
        Columns(text_column, label_column),
        source=str(file),
        columns_hint=COLUMNS_HINTS["cli"],
    )
    coverage, warnings, model = coverage_of(frame["text"].dropna().map(str).tolist(), model)
    counter, why_not = token_counter(model)
    result = analyze_frame(frame, count_tokens=counter)
    result["coverage"] = coverage
    result["warnings"] = warnings
    if as_json:
        _print_json(result)
        return
    from loraforge.cli import views

    views.analysis(console, str(file), result)
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if why_not:
        console.print(f"[yellow]{why_not}[/yellow]")


class _LazyTokenCounter:
    """Loads the tokenizer (transformers: seconds) only when validation gets as far as
    counting tokens, so a data set with errors is refused without it."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.why_not: str | None = None
        self._count = None
        self._loaded = False

    def __call__(self, texts):
        if not self._loaded:
            from loraforge.data.tokens import token_counter

            if self.model == "auto":
                from loraforge.data.language import detect_languages
                from loraforge.models.catalog import default_for_language

                self.model = default_for_language(detect_languages(list(texts)).dominant).name

            self._count, self.why_not = token_counter(self.model)
            self._loaded = True
        if self._count is None:
            return [0] * len(texts)  # unknown lengths: no truncation warning; why_not says so
        return self._count(texts)


@app.command("train")
def train(
    config: Annotated[
        Path,
        typer.Argument(metavar="CONFIG", help="YAML training config (see configs/demo.yaml)."),
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Override a key: --set training.epochs=1"),
    ] = None,
) -> None:
    """Fine-tune a base model with LoRA; results in results/<experiment_id>/."""
    from loraforge.config import load_config
    from loraforge.training.preflight import check_run

    loaded = load_config(config, overrides or [])
    # Missing data files or base-model folder, or a base model whose tokenizer cannot read
    # the data: refused in a second, with nothing recorded, instead of after torch loads
    # and a failed experiment is written.
    loaded, found = check_run(loaded)
    from loraforge.cli.progress import RichReporter
    from loraforge.training.runner import run_training

    chosen = " (auto, for the data's language)" if found.chosen_automatically else ""
    console.print(
        f"[bold]{escape(loaded.experiment_name)}[/bold]: {escape(loaded.model.base_model)}"
        f"{chosen}, {escape(str(loaded.data.train_file))}",
        highlight=False,
    )
    coverage = f"; {found.coverage.words()}" if found.coverage else ""
    console.print(f"  language: {escape(found.language.words())}{coverage}", highlight=False)
    result = run_training(loaded, reporter=RichReporter(console))
    final = result.metrics["final"]
    train_stats = result.metrics["train"]
    quality = result.metrics.get("quality") or {}
    learned = quality.get("learned", True)
    mark = "[green]✓[/green]" if learned else "[bold red]✗ model did not learn[/bold red]"
    console.print(
        f"{mark} {result.experiment_id}: accuracy {final['accuracy']:.4f}, "
        f"macro-F1 {final['f1_macro']:.4f} "
        f"({train_stats['samples_per_second']:.1f} samples/s on {result.metrics['device']}, "
        f"{result.metrics['precision']}{_why_precision(loaded, result.metrics)})"
    )
    kept = ", ".join(
        f"{role}={c['checkpoint']}" for role, c in result.metrics["checkpoints"].items()
    )
    console.print(f"  results     {result.results_dir}")
    console.print(f"  checkpoints {kept}")
    console.print(f"  MLflow run  {result.mlflow_run_id}")
    if not learned:
        from loraforge.cli import views

        views.quality_warning(console, quality)
    if loaded.registry.register_as:
        _register_after_training(loaded, result.experiment_id)


def _register_after_training(config, experiment_id: str) -> None:
    """`registry.register_as` in the config: the run becomes the model's next version.
    A refusal is a warning, not a failed run: the experiment is kept and can be
    registered by hand once the cause is fixed."""
    from loraforge.auth.users import local_operator
    from loraforge.registry import service
    from loraforge.settings import get_settings

    try:
        info = service.register_from_config(get_settings(), experiment_id, config, local_operator())
    except LoraforgeError as error:
        errors.print(
            f"[yellow]warning:[/yellow] not registered as {escape(config.registry.register_as)}: "
            f"{escape(error.message)}",
            highlight=False,
        )
        if error.hint:
            errors.print(f"[dim]hint:[/dim] {escape(error.hint)}", highlight=False)
        return
    if info is not None:
        console.print(
            f"  registered  {escape(info.reference)} (stage {info.stage})", highlight=False
        )


def _why_precision(config, metrics: dict) -> str:
    """Why `precision: auto` chose fp32, which is slower: a user comparing machines asks."""
    if config.training.precision == "auto" and metrics["precision"] == "fp32":
        if metrics["device"] == "cpu":
            return ": this CPU has no native bf16 (AVX-512 BF16 or AMX)"
        return ": `auto` keeps fp32 on this device"
    return ""


def _db_url() -> str:
    from loraforge.settings import get_settings

    return get_settings().resolved_database_url()


@experiments_app.command("list")
def experiments_list(
    status: Annotated[
        str | None,
        typer.Option(
            metavar="|".join(EXPERIMENT_STATUSES),
            callback=_check_status,
            help="Only experiments with this status.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, metavar="N", help="At most N experiments.")] = 50,
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

    # Piped or redirected, there is no terminal to fit: keep every column (a width given
    # in COLUMNS is still honoured).
    views.experiment_table(
        console, records, fit_width=console.is_terminal or "COLUMNS" in os.environ
    )


@experiments_app.command("show")
def experiments_show(
    experiment_id: Annotated[str, typer.Argument(metavar="ID", help="An id, or 'latest'.")],
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
    experiment_ids: Annotated[list[str], typer.Argument(metavar="ID", help="Two or more ids.")],
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


YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Delete without asking (needed when not at a terminal).")
]


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm_deletion(what: str, yes: bool) -> None:
    """Ask before deleting; without a terminal to ask at, refuse unless --yes."""
    if yes:
        return
    if not _stdin_is_terminal():
        from loraforge.errors import InvalidRequest

        raise InvalidRequest(
            f"not deleting {what} without confirmation: standard input is not a terminal",
            hint="Pass --yes to delete without being asked.",
        )
    if not typer.confirm(f"Delete {what}? This cannot be undone.", default=False):
        errors.print("nothing deleted")
        raise typer.Exit(130)


def _audit_cli(action: str, outcome: str, target: str, detail: dict | None = None) -> None:
    """The CLI acts as the machine's operator: its deletions are audited like the API's."""
    import getpass

    from sqlalchemy.orm import sessionmaker

    from loraforge.audit import log as audit
    from loraforge.db.engine import get_engine

    with sessionmaker(bind=get_engine(_db_url()))() as session:
        audit.record(
            session,
            action=action,
            outcome=outcome,
            target=target,
            client="cli",
            detail={"os_user": getpass.getuser(), **(detail or {})},
        )
        session.commit()


@experiments_app.command("delete")
def experiments_delete(
    experiment_ids: Annotated[list[str], typer.Argument(metavar="ID", help="One or more ids.")],
    yes: YesOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also delete an experiment recorded as running whose `loraforge train` "
            "process is gone (killed, machine restarted).",
        ),
    ] = False,
) -> None:
    """Delete experiments: the database row, the results folder (model, checkpoints,
    metrics, logs) and the MLflow run. Refused while a job is training one."""
    from loraforge.audit import log as audit
    from loraforge.errors import Conflict
    from loraforge.settings import get_settings
    from loraforge.tracking import experiments

    settings = get_settings()
    # Every id is checked before anything is deleted or asked: a typo deletes nothing.
    records = [experiments.get(_db_url(), i) for i in dict.fromkeys(experiment_ids)]
    for r in records:
        console.print(f"  {r.id} ({r.shown_status}), {r.results_dir}", highlight=False)
    _confirm_deletion(f"{len(records)} experiment" + ("s" if len(records) > 1 else ""), yes)
    failed: LoraforgeError | None = None
    for r in records:
        try:
            result = experiments.delete(
                _db_url(),
                r.id,
                tracking_uri=settings.resolved_mlflow_tracking_uri(),
                force=force,
            )
        except LoraforgeError as error:
            outcome = audit.DENIED if isinstance(error, Conflict) else audit.FAILURE
            _audit_cli(
                "experiment.delete", outcome, f"experiment:{r.id}", {"reason": error.message}
            )
            errors.print(f"[bold red]error:[/bold red] {escape(error.message)}", highlight=False)
            if error.hint:
                errors.print(f"[dim]hint:[/dim] {escape(error.hint)}", highlight=False)
            failed = failed or error
            continue
        _audit_cli(
            "experiment.delete",
            audit.SUCCESS,
            f"experiment:{r.id}",
            {"warnings": result.warnings} if result.warnings else None,
        )
        console.print(f"[green]✓[/green] deleted {r.id}", highlight=False)
        for warning in result.warnings:
            errors.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if failed is not None:
        raise typer.Exit(exit_code_for(failed))


@datasets_app.command("list")
def datasets_list(as_json: JsonOpt = False) -> None:
    """Uploaded data sets, newest first, everyone's."""
    from dataclasses import asdict

    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from loraforge.data import store
    from loraforge.db.engine import get_engine
    from loraforge.db.models import User

    with sessionmaker(bind=get_engine(_db_url()))() as session:
        found = store.list_datasets(session, user_id=0, is_admin=True)
        owners = {
            user_id: name for user_id, name in session.execute(select(User.id, User.username))
        }
    if as_json:
        _print_json([{**asdict(d), "owner": owners.get(d.owner_id)} for d in found])
        return
    if not found:
        console.print("no data sets uploaded yet (upload one in the web UI or POST /datasets)")
        return
    # One line each, never wrapped (the console soft-wraps): a table squeezed into 80
    # columns broke the 36-character ids that `datasets delete` needs whole.
    for d in found:
        console.print(
            f"{d.id}  [bold]{escape(d.name)}[/bold]  {d.rows} rows  "
            f"by {escape(owners.get(d.owner_id, '?'))}  {d.created_at:%Y-%m-%d %H:%M} UTC",
            highlight=False,
        )


@datasets_app.command("delete")
def datasets_delete(
    dataset_id: Annotated[str, typer.Argument(metavar="ID", help="A data set id.")],
    yes: YesOpt = False,
) -> None:
    """Delete an uploaded data set: its stored file and its record. Refused while a job
    trains or evaluates on it; finished jobs keep their history."""
    from sqlalchemy.orm import sessionmaker

    from loraforge.audit import log as audit
    from loraforge.data import store
    from loraforge.db.engine import get_engine
    from loraforge.errors import Conflict
    from loraforge.settings import get_settings

    with sessionmaker(bind=get_engine(_db_url()))() as session:
        record = store.get_dataset(session, dataset_id=dataset_id, user_id=0, is_admin=True)
    console.print(f"  {record.id} ({record.name}, {record.rows} rows)", highlight=False)
    _confirm_deletion(f"data set {record.id}", yes)
    with sessionmaker(bind=get_engine(_db_url()))() as session:
        try:
            stored = store.delete_dataset(
                session,
                dataset_id=dataset_id,
                user_id=None,
                is_admin=True,
                datasets_dir=get_settings().resolved_datasets_dir(),
            )
        except LoraforgeError as error:
            outcome = audit.DENIED if isinstance(error, Conflict) else audit.FAILURE
            session.rollback()
            _audit_cli(
                "dataset.delete", outcome, f"dataset:{dataset_id}", {"reason": error.message}
            )
            raise
        audit.record(
            session,
            action="dataset.delete",
            outcome=audit.SUCCESS,
            target=f"dataset:{dataset_id}",
            client="cli",
            detail={"name": record.name},
        )
        session.commit()
    # After the commit, as in the API: at worst a file that nothing points to is left.
    warning = store.remove_stored_file(stored)
    console.print(f"[green]✓[/green] deleted data set {dataset_id}", highlight=False)
    if warning:
        errors.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


BLANK_LINE = "blank line: nothing to classify"


@app.command("predict")
def predict(
    texts: Annotated[
        list[str] | None, typer.Argument(metavar="TEXT", help="Texts to classify.")
    ] = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", "-e", metavar="ID", help="An id, or 'latest' (the default)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME@STAGE|NAME:N",
            help="A registered model version instead of an experiment: NAME@production, "
            "NAME@staging (its newest Staging version) or NAME:3.",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="A UTF-8 file with one text per line ('-': stdin). Every line gets one "
            'answer, in order, with its "line" number (1-based); a blank line gets '
            '"label": null and an "error", so answers stay in step with the lines.',
        ),
    ] = None,
) -> None:
    """Classify texts with a fine-tuned experiment or a registered model version; one
    JSON line per text, in order.

    Each answer echoes its "text" (and its "line" for --file input) beside its "label".
    """
    items: list[tuple[int | None, str]] = [(None, text) for text in texts or []]
    if file is not None:
        items += _read_lines(file)  # before anything heavy: a missing file fails at once
    if not items:
        raise typer.BadParameter("give texts as arguments or with --file")
    if experiment is not None and model is not None:
        raise typer.BadParameter("give --experiment or --model, not both")
    from loraforge.inference.predictor import Predictor

    model_dir = _registered_model_dir(model) if model else _experiment_model_dir(experiment)
    predictor = Predictor(model_dir)
    answers = iter(predictor.predict([text.strip() for _, text in items if text.strip()]))
    for line, text in items:
        answer: dict[str, object] = {} if line is None else {"line": line}
        answer["text"] = text
        if text.strip():
            answer.update(next(answers).to_dict())
        else:
            answer.update(
                label=None,
                probability=None,
                latency_ms=None,
                base_model=predictor.meta.base_model,
                language=predictor.meta.language,
                error=BLANK_LINE if line is not None else "blank text: nothing to classify",
            )
        typer.echo(_json_line(answer))


def _experiment_model_dir(experiment: str | None) -> Path:
    from loraforge.inference.predictor import final_model_dir
    from loraforge.tracking.experiments import SUCCEEDED, get

    record = get(_db_url(), experiment or "latest")
    if record.status != SUCCEEDED:
        raise DatasetError(
            f"experiment {record.id} has status {record.status}; only a succeeded one has a model"
        )
    if record.learned is False:
        # Answers still come (they help see what the model does), but not silently.
        errors.print(
            f"[yellow]warning:[/yellow] {escape(record.id)}'s model did not learn: "
            "its answers are no better than always the most common label "
            f"(`loraforge experiments show {escape(record.id)}` says why).",
            highlight=False,
        )
    return final_model_dir(Path(record.results_dir))


def _registered_model_dir(reference: str) -> Path:
    """The adapter folder of a registry reference (NAME@production, NAME@staging, NAME:3)."""
    from loraforge.errors import NotFound
    from loraforge.registry import service
    from loraforge.settings import get_settings

    found = service.resolve_reference(get_settings(), reference)
    if found.model_dir is None:
        raise NotFound(f"{found.reference} has no model files")
    return found.model_dir


def _json_line(value: object) -> str:
    # U+2028/U+2029 are valid inside a JSON string, but many line readers (str.splitlines,
    # JavaScript) end a line there: escaped, one answer is always exactly one line.
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _split_lines(content: str) -> list[str]:
    # Only "\n" (and "\r\n") end a line, as for `wc -l`, editors and `paste`; str.splitlines
    # would also split at form feeds or U+2028 inside a text and shift every answer after it.
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.removesuffix("\r") for line in lines]


def _read_lines(file: Path) -> list[tuple[int, str]]:
    """(1-based line number, text) for every line, blank ones included."""
    if str(file) == "-":
        content = sys.stdin.read()
    else:
        from loraforge.data.files import check_readable

        check_readable(file, suffixes=None)
        try:
            content = file.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DatasetError(
                f"{file} is not UTF-8 text", hint="Re-save the file as UTF-8."
            ) from None
    return list(enumerate(_split_lines(content), start=1))


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(metavar="USERNAME")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input."),
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
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="API processes sharing the port (about one per core)."
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (FastAPI on uvicorn); OpenAPI docs at /docs."""
    from loraforge.settings import get_settings

    get_settings()  # a bad LORAFORGE_* value: our words, before uvicorn or a database
    import uvicorn

    from loraforge.api.app import create_app
    from loraforge.monitoring import logs

    logs.configure("api")
    # Settings and migrations: fail here, with the reason, rather than in every process.
    create_app()
    if workers > 1:
        from loraforge.monitoring.multiprocess import prepare_multiprocess_dir

        prepare_multiprocess_dir()  # /metrics then sums the request counters of all
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
        int,
        typer.Option(min=1, metavar="N", help="Jobs run at once (each trains on all cores)."),
    ] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            help="Serve Prometheus metrics (alive, jobs running here, CPU, memory) on "
            "this port, e.g. 9101; job counts are on the API's /metrics.",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address of the metrics endpoint.")
    ] = "0.0.0.0",
) -> None:
    """Run a Celery worker that trains queued jobs, and reaps jobs whose worker died."""
    from loraforge.settings import get_settings

    settings = get_settings()  # a bad LORAFORGE_* value: our words, before Celery loads
    from loraforge.jobs.worker import run_worker

    if metrics_port is not None:
        from loraforge.errors import ConfigError
        from loraforge.monitoring.worker_metrics import serve_worker_metrics

        try:
            serve_worker_metrics(metrics_port, settings.resolved_database_url(), metrics_host)
        except OSError as failure:
            raise ConfigError(
                f"cannot serve metrics on {metrics_host}:{metrics_port}: {failure.strerror}",
                hint="Choose another --metrics-port (each worker on a machine needs its own).",
            ) from None
    run_worker(settings, concurrency=concurrency)


@app.command("ui")
def ui(
    port: UiPortOpt = 8501,
    host: HostOpt = "127.0.0.1",
    api_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="The API the UI talks to; default LORAFORGE_API_URL."),
    ] = None,
) -> None:
    """Run the web UI (Streamlit); it talks to the API over HTTP only."""
    from loraforge.launcher import ui_command
    from loraforge.settings import get_settings

    # Checked here: inside Streamlit a bad LORAFORGE_* value would be a traceback in a page.
    get_settings()

    os.execvpe(*ui_command(host=host, port=port, api_url=api_url))


@app.command("up")
def up(
    api_port: ApiPortOpt = 8000,
    ui_port: UiPortOpt = 8501,
    mlflow_port: MlflowPortOpt = 5000,
    no_mlflow: Annotated[
        bool, typer.Option("--no-mlflow", help="Do not start the MLflow UI.")
    ] = False,
    host: HostOpt = "127.0.0.1",
) -> None:
    """Start the API, a worker, the web UI and the MLflow UI; Ctrl-C stops all.

    Their output goes to <data dir>/logs/ (api.log, worker.log, ui.log, mlflow.log), not
    the terminal. The MLflow UI (`mlflow server`) serves loraforge's own tracking store
    and artifacts; it is not started when the tracking URI is already an MLflow server.

    The URLs are printed once all of them answer.
    """
    from loraforge.launcher import MlflowUi, run_all
    from loraforge.settings import get_settings

    settings = get_settings()
    broker = settings.broker_url or f"embedded (files under {settings.resolved_broker_dir()})"
    tracking_uri = settings.resolved_mlflow_tracking_uri()
    mlflow = None
    if no_mlflow:
        pass
    elif tracking_uri.startswith(("http://", "https://")):
        # A tracking server already is an MLflow UI; a second one on it would only confuse.
        console.print(
            "MLflow UI not started: LORAFORGE_MLFLOW_TRACKING_URI is an MLflow server "
            "already (its own UI)",
            markup=False,
            highlight=False,
        )
    else:
        mlflow = MlflowUi(
            port=mlflow_port,
            backend_store_uri=tracking_uri,
            artifact_root=settings.resolved_mlflow_artifact_root(),
        )
    code = run_all(
        host=host,
        api_port=api_port,
        ui_port=ui_port,
        broker=broker,
        log_dir=settings.resolved_data_dir() / "logs",
        # Plain text: a log's tail may hold brackets that rich would read as markup.
        announce=lambda text: console.print(text, markup=False, highlight=False),
        mlflow=mlflow,
    )
    raise typer.Exit(code)


# Last: the registry's commands share this module's console and helpers.
from loraforge.cli.registry import registry_app  # noqa: E402

app.add_typer(registry_app, name="registry")

import loraforge.cli.serve  # noqa: E402, F401  (registers `loraforge serve`)
from loraforge.cli.tokens import tokens_app  # noqa: E402

app.add_typer(tokens_app, name="tokens")

from loraforge.cli.db import db_app  # noqa: E402

app.add_typer(db_app, name="db")

from loraforge.cli.models import models_app  # noqa: E402

app.add_typer(models_app, name="models")
