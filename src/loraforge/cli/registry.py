"""`loraforge registry`: the model registry from the command line.

The CLI acts as this machine's operator (``auth.users.local_operator()``: an admin,
named ``cli:<os user>`` in the history and the audit log), on the same database and
MLflow store as the API. Errors are typed and reach the exit codes through ``_Group``
in cli/app.py: 3 not found, 4 forbidden, 7 conflict (a refused transition or the
promotion gate), 9 MLflow unreachable.

Imported at the end of cli/app.py, whose console and helpers it shares.
"""

from __future__ import annotations

import os
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from loraforge.cli.app import JsonOpt, _print_json, console
from loraforge.cli.tables import Column, fitted_table

if TYPE_CHECKING:
    from loraforge.auth.users import UserRecord
    from loraforge.registry.records import ModelSummary, VersionInfo
    from loraforge.settings import Settings

registry_app = typer.Typer(
    help="The model registry: register experiments as model versions, promote them "
    "through Staging to Production, read their history and cards, search, recommend.",
    no_args_is_help=True,
)

TARGET_STAGES = ("Staging", "Production", "Archived")
STAGES = ("none", *TARGET_STAGES)
METRICS = ("f1_macro", "accuracy")

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="A registered model's name.")]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", min=1, help="1, 2, 3 …")]
TagsOpt = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="KEY=VALUE", help="A tag; repeat for several."),
]


# --- helpers ------------------------------------------------------------------------------


def _settings() -> Settings:
    from loraforge.settings import get_settings

    return get_settings()


def _operator() -> UserRecord:
    from loraforge.auth.users import local_operator

    return local_operator()


def _canonical(value: str | None, choices: tuple[str, ...], what: str) -> str | None:
    """Any case ("production") to the spelling the registry uses ("Production")."""
    if value is None:
        return None
    found = {c.lower(): c for c in choices}.get(value.strip().lower())
    if found is None:
        raise typer.BadParameter(f"{value!r} is not a {what}; use one of: {', '.join(choices)}")
    return found


def _target_stage(value: str | None) -> str | None:
    return _canonical(value, TARGET_STAGES, "stage a version can move to")


def _any_stage(value: str | None) -> str | None:
    return _canonical(value, STAGES, "stage")


def _metric(value: str) -> str:
    return _canonical(value, METRICS, "metric")  # type: ignore[return-value]


def _tags(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        tags[key.strip()] = value.strip()
    return tags


def version_dict(info: VersionInfo) -> dict[str, Any]:
    """A version as --json prints it: the API's fields, `reference` included."""
    fields = {k: v for k, v in asdict(info).items() if k not in ("model_dir", "owner_id")}
    return {"reference": info.reference, **fields}


def summary_dict(model: ModelSummary) -> dict[str, Any]:
    out = {
        "name": model.name,
        "description": model.description,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "version_count": model.version_count,
        "latest": version_dict(model.latest) if model.latest else None,
        "production": version_dict(model.production) if model.production else None,
        "staging": list(model.staging),
    }
    versions = getattr(model, "versions", None)
    if versions is not None:
        out["versions"] = [version_dict(v) for v in versions]
    return out


def _as_data(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _fmt(value: Any) -> str:
    from loraforge.cli.views import fmt

    return fmt(value)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


STAGE_COLOURS = {"Production": "bold green", "Staging": "yellow", "Archived": "dim"}


def _stage(stage: str) -> str:
    colour = STAGE_COLOURS.get(stage)
    return f"[{colour}]{stage}[/{colour}]" if colour else stage


def _fit() -> bool:
    # Piped to a file or grep: no width to fit, every column kept (as experiments list).
    return console.is_terminal or "COLUMNS" in os.environ


VERSION_COLUMNS = [
    Column("version", lambda v: str(v.version)),
    Column("stage", lambda v: _stage(v.stage)),
    Column("macro-F1", lambda v: _fmt(v.metrics.get("f1_macro"))),
    Column("accuracy", lambda v: _fmt(v.metrics.get("accuracy"))),
    Column("task", lambda v: escape(_fmt(v.task))),
    Column("language", lambda v: _fmt(v.language)),
    Column("owner", lambda v: escape(_owner(v))),
    Column("experiment", lambda v: v.experiment_id),
    Column("registered (UTC)", lambda v: _when(v.created_at)),
]
# Left out first when the terminal is narrow; model, version, stage and macro-F1 stay.
VERSION_DROPS = ("registered (UTC)", "experiment", "language", "owner", "task", "accuracy")


def _owner(v: VersionInfo) -> str:
    return v.owner or "-"


def _versions_table(versions: list[VersionInfo], *, with_name: bool) -> None:
    columns = ([Column("model", lambda v: escape(v.name))] if with_name else []) + VERSION_COLUMNS
    fitted_table(
        console,
        columns,
        versions,
        drop_first=VERSION_DROPS,
        fit_width=_fit(),
        fallback=lambda v: f"{v.reference}  {_stage(v.stage)}",
    )


# --- commands -----------------------------------------------------------------------------


@registry_app.command("register")
def register(
    experiment: Annotated[
        str, typer.Argument(metavar="EXPERIMENT", help="A succeeded experiment's id, or 'latest'.")
    ],
    name: Annotated[
        str,
        typer.Option(
            "--name", metavar="NAME", help="The model's name: letters, digits, '.', '_', '-'."
        ),
    ],
    description: Annotated[
        str | None, typer.Option(metavar="TEXT", help="What this version is.")
    ] = None,
    tag: TagsOpt = None,
    task: Annotated[
        str | None, typer.Option(metavar="TEXT", help='What it does: "sentiment".')
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            metavar="USERNAME",
            help="Register on behalf of this user: the version is theirs (they may move "
            "it to Staging), and the experiment must be theirs.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a succeeded experiment as the next version (1, 2, 3 …) of a model."""
    from loraforge.registry import service
    from loraforge.tracking.experiments import get

    settings = _settings()
    record = get(settings.resolved_database_url(), experiment)  # resolves 'latest'
    user = _user_named(settings, owner) if owner else _operator()
    info = service.register_version(
        settings,
        experiment_id=record.id,
        name=name,
        description=description,
        tags=_tags(tag),
        task=task,
        user=user,
        client="cli",
    )
    if as_json:
        _print_json(version_dict(info))
        return
    console.print(
        f"[green]✓[/green] registered [bold]{escape(info.name)}[/bold] version {info.version} "
        f"from {info.experiment_id} (stage {info.stage})",
        highlight=False,
    )
    console.print(
        f"  next: loraforge registry promote {escape(info.name)} {info.version} --stage Staging",
        highlight=False,
    )


def _user_named(settings: Settings, username: str) -> UserRecord:
    from sqlalchemy import select

    from loraforge.auth.users import UserRecord
    from loraforge.db.engine import session_scope
    from loraforge.db.models import User
    from loraforge.errors import NotFound

    with session_scope(settings.resolved_database_url()) as session:
        row = session.scalar(select(User).where(User.username == username))
        if row is None or not row.is_active:
            raise NotFound(
                f"no active user {username!r}", hint="`loraforge users create` adds one."
            )
        return UserRecord.from_row(row)


@registry_app.command("list")
def list_models(as_json: JsonOpt = False) -> None:
    """Registered models: versions, newest, Production and Staging versions."""
    from loraforge.registry import service

    found = service.list_models(_settings())
    if as_json:
        _print_json([summary_dict(m) for m in found])
        return
    if not found:
        console.print(
            "no registered models yet (loraforge registry register EXPERIMENT --name NAME)"
        )
        return
    columns = [
        Column("model", lambda m: escape(m.name)),
        Column("versions", lambda m: str(m.version_count)),
        Column(
            "production",
            lambda m: (
                f"v{m.production.version} (macro-F1 {_fmt(m.production.metrics.get('f1_macro'))})"
                if m.production
                else "-"
            ),
        ),
        Column("staging", lambda m: ", ".join(f"v{n}" for n in m.staging) or "-"),
        Column("latest", lambda m: f"v{m.latest.version} ({m.latest.stage})" if m.latest else "-"),
        Column("updated (UTC)", lambda m: _when(m.updated_at)),
    ]
    fitted_table(
        console,
        columns,
        found,
        drop_first=("updated (UTC)", "latest", "staging"),
        fit_width=_fit(),
        fallback=lambda m: m.name,
    )


@registry_app.command("show")
def show(
    name: NameArg,
    version: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Only this version, in full.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A model and all its versions, or one version in full."""
    from loraforge.registry import service

    settings = _settings()
    if version is not None:
        info = service.get_version(settings, name, version)
        if as_json:
            _print_json(version_dict(info))
            return
        _version_detail(info)
        return
    model = service.get_model(settings, name)
    if as_json:
        _print_json(summary_dict(model))
        return
    console.print(f"[bold]{escape(model.name)}[/bold]: {model.version_count} version(s)")
    if model.description:
        console.print(f"  {escape(model.description)}")
    _versions_table(model.versions, with_name=False)


def _version_detail(info: VersionInfo) -> None:
    console.print(f"[bold]{escape(info.reference)}[/bold] ({_stage(info.stage)})")
    metrics = info.metrics
    rows = [
        ("experiment", info.experiment_id),
        ("base model", f"{_fmt(info.base_model)} ({_fmt(info.language)})"),
        ("task", _fmt(info.task)),
        ("labels", _fmt(info.labels)),
        (
            "metrics",
            f"accuracy {_fmt(metrics.get('accuracy'))}, macro-F1 {_fmt(metrics.get('f1_macro'))}"
            f" on eval data {_fmt(metrics.get('eval_data_version'))}",
        ),
        ("owner", info.owner or "-"),
        ("registered", f"{_when(info.created_at)} UTC"),
        ("MLflow", f"run {_fmt(info.mlflow_run_id)}, model version {_fmt(info.mlflow_version)}"),
        ("description", _fmt(info.description)),
        ("tags", ", ".join(f"{k}={v}" for k, v in info.tags.items()) or "-"),
        ("intended use", _fmt(info.intended_use)),
        ("limitations", _fmt(info.limitations)),
    ]
    for key, value in rows:
        console.print(f"  {key:<12} {escape(value)}", highlight=False)


@registry_app.command("history")
def history(name: NameArg, as_json: JsonOpt = False) -> None:
    """Every registration and stage change of a model, newest first."""
    from loraforge.registry import service

    found = service.history(_settings(), name)
    if as_json:
        _print_json([_transition_dict(t) for t in found])
        return
    fitted_table(
        console,
        [
            Column("at (UTC)", lambda t: t.at.strftime("%Y-%m-%d %H:%M:%S")),
            Column("version", lambda t: str(t.version)),
            Column("change", _change),
            Column("by", lambda t: escape(t.actor_username or "-")),
            Column("macro-F1", _snapshot),
            Column("reason", lambda t: escape(t.reason or ""), wrap=True),
        ],
        found,
        drop_first=("by", "macro-F1", "at (UTC)"),
        fit_width=_fit(),
        fallback=lambda t: f"v{t.version} {_change(t)}",
    )


def _transition_dict(t: Any) -> dict[str, Any]:
    """As GET /models/{name}/history answers it."""
    data = _as_data(t)
    data["actor"] = data.pop("actor_username", None)
    data.pop("actor_id", None)
    return data


def _change(t: Any) -> str:
    if t.from_stage is None:
        return "registered"
    change = f"{t.from_stage} → {t.to_stage}"
    return change + " [bold red](forced)[/bold red]" if t.forced else change


def _snapshot(t: Any) -> str:
    """The version's macro-F1 and, at a promotion to Production, the one it replaced."""
    mine = _fmt((t.metrics or {}).get("f1_macro"))
    if t.previous_production_metrics:
        return f"{mine} (was {_fmt(t.previous_production_metrics.get('f1_macro'))})"
    return mine


@registry_app.command("promote")
def promote(
    name: NameArg,
    version: VersionArg,
    stage: Annotated[
        str,
        typer.Option(
            metavar="|".join(TARGET_STAGES),
            callback=_target_stage,
            help="The stage to move the version to.",
        ),
    ],
    reason: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Why; kept in the history.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Promote past the gate (a worse metric, or other eval data than the "
            "current Production's); needs --reason.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move a version to Staging, Production or Archived.

    Promoting to Production archives the previous Production version and passes the
    gate: refused (exit 7) when the candidate's macro-F1 is below Production's on the
    same eval data, unless --force with --reason.
    """
    from loraforge.registry import service

    info = service.transition_version(
        _settings(),
        name=name,
        version=version,
        stage=stage,
        reason=reason,
        force=force,
        user=_operator(),
        client="cli",
    )
    if as_json:
        _print_json(version_dict(info))
        return
    console.print(
        f"[green]✓[/green] {escape(info.name)} version {info.version} is now "
        f"{_stage(info.stage)}" + (" (forced)" if force else ""),
        highlight=False,
    )


@registry_app.command("card")
def card(
    name: NameArg,
    version: VersionArg,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the README.md as written (to pipe or save).")
    ] = False,
    intended_use: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Set the card's intended use first.")
    ] = None,
    limitations: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Set the card's limitations first.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A version's model card: shown as formatted text, its README.md (--markdown) or
    its JSON (--json)."""
    from loraforge.registry import service

    settings = _settings()
    if intended_use is not None or limitations is not None:
        found = service.update_card(
            settings,
            name,
            version,
            intended_use=intended_use,
            limitations=limitations,
            user=_operator(),
            client="cli",
        )
    else:
        found = service.read_card(settings, name, version)
    if as_json:
        _print_json(found.data)
    elif markdown:
        typer.echo(found.readme, nl=not found.readme.endswith("\n"))
    else:
        from rich.markdown import Markdown

        # Wrapped to the width even when piped: a list item is otherwise cut at it.
        console.print(Markdown(_without_front_matter(found.readme)), soft_wrap=False)


def _without_front_matter(readme: str) -> str:
    """The README's body: its YAML header is for the Hub, not for a person reading."""
    if readme.startswith("---\n"):
        end = readme.find("\n---", 4)
        if end != -1:
            return readme[end + 4 :].lstrip("\n")
    return readme


@registry_app.command("search")
def search(
    name: Annotated[str | None, typer.Option(metavar="TEXT", help="Part of the name.")] = None,
    base_model: Annotated[str | None, typer.Option(metavar="MODEL")] = None,
    language: Annotated[
        str | None, typer.Option(metavar="CODE", help="en, zh … (or English, Chinese).")
    ] = None,
    task: Annotated[str | None, typer.Option(metavar="TEXT")] = None,
    tag: TagsOpt = None,
    stage: Annotated[
        str | None, typer.Option(metavar="|".join(STAGES), callback=_any_stage)
    ] = None,
    include_archived: Annotated[
        bool, typer.Option("--include-archived", help="Archived versions too.")
    ] = False,
    metric: Annotated[
        str, typer.Option(metavar="|".join(METRICS), callback=_metric, help="Filter and sort by.")
    ] = "f1_macro",
    min_metric: Annotated[
        float | None, typer.Option(metavar="X", min=0.0, max=1.0, help="At least this score.")
    ] = None,
    by_date: Annotated[bool, typer.Option("--by-date", help="Newest first, not best.")] = False,
    ascending: Annotated[bool, typer.Option("--asc", help="Lowest (or oldest) first.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100, metavar="N")] = 20,
    offset: Annotated[int, typer.Option(min=0, metavar="N")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Versions of every model matching all the filters, best macro-F1 first."""
    from loraforge.registry import search as registry_search

    page = registry_search.search(
        _settings(),
        name=name,
        base_model=base_model,
        language=language,
        task=task,
        tags=_tags(tag),
        stage=stage,
        include_archived=include_archived,
        metric=metric,
        min_metric=min_metric,
        sort="date" if by_date else "metric",
        descending=not ascending,
        limit=limit,
        offset=offset,
    )
    if as_json:
        _print_json(
            {
                "data": [version_dict(v) for v in page.items],
                "count": len(page.items),
                "total": page.total,
                "limit": page.limit,
                "offset": page.offset,
            }
        )
        return
    if not page.items:
        console.print(f"no versions match ({page.total} in all)")
        return
    _versions_table(page.items, with_name=True)
    first = page.offset + 1
    console.print(
        f"[dim]{first}-{page.offset + len(page.items)} of {page.total}[/dim]", highlight=False
    )


@registry_app.command("recommend")
def recommend(
    query: Annotated[
        str | None, typer.Argument(metavar="TEXT", help="What you need, in plain words.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", metavar="ID", help="An uploaded data set: which model fits it?"),
    ] = None,
    language: Annotated[
        str | None, typer.Option(metavar="CODE", help="Only this language.")
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(metavar="|".join(STAGES), callback=_any_stage, help="Only this stage."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=50, metavar="N")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Registered models ranked for a need in words, or for an uploaded data set."""
    if (query is None) == (dataset is None):
        raise typer.BadParameter("give a TEXT or --dataset ID (one of them)")
    from loraforge.registry import recommend as registry_recommend

    found = registry_recommend.recommend(
        _settings(),
        query=query,
        dataset_id=dataset,
        user=_operator(),
        language=language,
        stage=stage,
        limit=limit,
    )
    if as_json:
        _print_json(
            [
                {"model": version_dict(r.version), "score": r.score, "reasons": r.reasons}
                for r in found
            ]
        )
        return
    if not found:
        console.print("no registered model matches")
        return
    ranked = list(enumerate(found, start=1))
    fitted_table(
        console,
        [
            Column("#", lambda p: str(p[0])),
            Column("model", lambda p: escape(p[1].version.reference)),
            Column("stage", lambda p: _stage(p[1].version.stage)),
            Column("score", lambda p: f"{p[1].score:.3f}"),
            Column("macro-F1", lambda p: _fmt(p[1].version.metrics.get("f1_macro"))),
            Column("why", lambda p: escape("; ".join(p[1].reasons)), wrap=True),
        ],
        ranked,
        drop_first=("macro-F1", "stage"),
        fit_width=_fit(),
        fallback=lambda p: f"{p[0]}. {p[1].version.reference}",
    )


@registry_app.command("sync")
def sync(as_json: JsonOpt = False) -> None:
    """Repair MLflow's registry from ours (the record of truth): missing versions, aliases
    and stage tags are written again."""
    from loraforge.registry import service

    report = service.sync(_settings(), user=_operator(), client="cli")
    if as_json:
        _print_json({**asdict(report), "in_step": report.in_step})
        return
    checked = f"{report.models} model(s), {report.versions} version(s) checked"
    if report.in_step:
        console.print(f"[green]✓[/green] MLflow was already in step ({checked})")
        return
    console.print(f"[green]✓[/green] MLflow repaired ({checked}):")
    for change in report.changes:
        console.print(f"  {escape(change)}", highlight=False)
