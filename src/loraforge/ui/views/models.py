"""Models: the team's registry. Every registered model with its stage; search and a
recommendation in words or from a data set; one version's card (scores, labels, per-class
table, confusion matrix, lineage), its stage buttons for those allowed, its history, and
its card to edit and download. ``/models?name=X&version=N`` opens that version."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from loraforge.ui import charts, session, tables
from loraforge.ui import model_view as mv
from loraforge.ui.client import ApiError
from loraforge.ui.job_view import NOTHING, when

DONE = "models_done"  # said after the rerun that shows the result
REFUSED = "models_refused"  # the last transition the API refused: shown by its version
# Transitions made in this session: part of the reason field's key, so that a reason is
# typed afresh for each move instead of being carried over to the next one.
MOVES = "models_moves"
MLFLOW_URLS = "models_mlflow_urls"  # MLflow run id → its page in the MLflow UI
ANY = "any"
CARD_FIELDS = {"intended_use": "Intended use", "limitations": "Limitations"}
PAGE_SIZE = 20
EMPTY = (
    "No registered models yet. Register a succeeded experiment from its page under "
    "**Experiments** (*Register this model*), or from a terminal: "
    "`loraforge registry register EXPERIMENT --name NAME`."
)

st.title("Models")
if done := st.session_state.pop(DONE, None):
    st.success(done, icon=":material/check_circle:")
api = session.api()
me = session.signed_in_user()
models = api.registered_models()


def show_table(frame: pd.DataFrame, formats: dict[str, str], pinned: str) -> None:
    """``tables.show`` with the Stage column coloured like the badges."""
    columns = {
        name: st.column_config.Column(width=px, pinned=name == pinned or None)
        for name, px in tables.widths(frame, formats).items()
    }
    st.dataframe(
        tables.styled(frame, formats).map(mv.stage_style, subset=["Stage"]),
        hide_index=True,
        width="stretch",
        column_config=columns,
        placeholder=NOTHING,
    )


def optional(value: str) -> str | None:
    return None if value in (ANY, "") else value


def _any(words) -> Any:
    """A filter's "any" option reads "any"; the others through ``words``."""
    return lambda value: "any" if value == ANY else words(value)


def known(field: str) -> list[str]:
    """Values of a field among the versions the registry list shows, for the filters."""
    values = {
        v.get(field)
        for m in models
        for v in (m.get("latest"), m.get("production"))
        if v and v.get(field)
    }
    return sorted(values)


def registry() -> None:
    show_table(mv.registry_rows(models), mv.REGISTRY_FORMATS, "Model")
    st.caption(
        "Scores are the Production version's, else the latest version's. Click a column "
        "header to sort; pick a model below to open a version."
    )


def search() -> None:
    with st.form("search"):
        top = st.columns(4)
        name = top[0].text_input("Name contains", placeholder="sentiment")
        base = top[1].selectbox(
            "Base model", [ANY, *known("base_model")], format_func=_any(tables.model_name)
        )
        language = top[2].selectbox("Language", [ANY, *known("language")])
        task = top[3].selectbox("Task", [ANY, *known("task")])
        middle = st.columns(4)
        tags = middle[0].text_input("Tags", placeholder="team=support, domain=airline")
        stage = middle[1].selectbox("Stage", [ANY, *mv.STAGES], format_func=_any(mv.stage_words))
        metric = middle[2].selectbox("Metric", list(mv.METRICS), format_func=mv.METRICS.__getitem__)
        least = middle[3].number_input(
            "At least", min_value=0.0, max_value=1.0, value=None, step=0.05, format="%.2f"
        )
        bottom = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
        sort = bottom[0].radio(
            "Sort by", ["metric", "date"], horizontal=True, format_func=str.capitalize
        )
        order = bottom[1].radio(
            "Order",
            ["desc", "asc"],
            horizontal=True,
            format_func={"desc": "best / newest first", "asc": "worst / oldest first"}.get,
        )
        archived = bottom[2].checkbox("Include archived versions")
        bottom[3].form_submit_button("Search", icon=":material/search:", type="primary")
    try:
        wanted = mv.parse_tags(tags)
    except ValueError as error:
        st.error(f"Tags: {error}. Write them as key=value, separated by commas.")
        return
    page = st.session_state.get("search_page", 1)
    try:
        found = api.search_models(
            name=name.strip() or None,
            base_model=optional(base),
            language=optional(language),
            task=optional(task),
            tags=wanted,
            stage=optional(stage),
            include_archived=archived or stage == mv.ARCHIVED,
            metric=metric,
            min_metric=least,
            sort=sort,
            order=order,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
    except ApiError as error:
        session.show_error(error)
        return
    total = found.get("total", len(found["data"]))
    if page > 1 and not found["data"] and total:  # the filters changed under a later page
        st.session_state["search_page"] = 1
        st.rerun()
    if not found["data"]:
        st.info("No version matches these filters.", icon=":material/search_off:")
    else:
        show_table(mv.version_rows(found["data"]), mv.REGISTRY_FORMATS, "Model")
    pages = max(1, -(-total // PAGE_SIZE))
    if pages > 1:
        st.number_input("Page", 1, pages, key="search_page")
    st.caption(f"{total} version{'s' if total != 1 else ''} match.")


def recommend() -> None:
    source = st.radio(
        "Find a model for",
        ["A need, in words", "One of your data sets"],
        horizontal=True,
        key="recommend_source",
    )
    query = dataset_id = None
    with st.form("recommend"):
        if source == "A need, in words":
            query = st.text_area(
                "What should the model do?",
                placeholder="Tell whether an airline review is positive or negative",
                height=80,
            )
        else:
            datasets = api.datasets()
            if not datasets:
                st.caption("No data sets uploaded yet: upload one under **New job**.")
            dataset_id = st.selectbox(
                "Data set",
                [d["id"] for d in datasets],
                format_func=lambda i: next(
                    f"{d['name']} · {d['rows']:,} rows · {i[:8]}" for d in datasets if d["id"] == i
                ),
            )
        cols = st.columns(3, vertical_alignment="bottom")
        language = cols[0].selectbox("Language", [ANY, *known("language")], key="rec_language")
        stage = cols[1].selectbox(
            "Stage", [ANY, mv.PRODUCTION, mv.STAGING], key="rec_stage", format_func=_any(str)
        )
        asked = cols[2].form_submit_button("Recommend", icon=":material/auto_awesome:")
    if not asked:
        return
    if source == "A need, in words" and not (query or "").strip():
        st.error("Describe what the model should do, in a sentence.")
        return
    if source != "A need, in words" and not dataset_id:
        st.error("Pick a data set.")
        return
    try:
        answers = api.recommend(
            query=(query or "").strip() or None,
            dataset_id=dataset_id,
            language=optional(language),
            stage=optional(stage),
        )
    except ApiError as error:
        session.show_error(error)
        return
    if not answers:
        st.info("No registered model fits these filters.", icon=":material/search_off:")
    for rank, answer in enumerate(answers, 1):
        model = answer["model"]
        with st.container(border=True):
            st.markdown(mv.recommendation_line(rank, answer))
            st.page_link(
                "views/models.py",
                label=f"Open {model['name']} v{model['version']}",
                icon=":material/open_in_new:",
                query_params={"name": model["name"], "version": str(model["version"])},
            )


# One version -------------------------------------------------------------------------------


def pick_version() -> tuple[dict[str, Any], dict[str, Any]]:
    """The model and version asked for in the URL, else the first model's Production
    (or latest) version; the URL follows the choice, so it can be shared."""
    names = [m["name"] for m in models]
    asked_name = st.query_params.get("name")
    left, right = st.columns([3, 2])
    name = left.selectbox(
        "Model", names, index=names.index(asked_name) if asked_name in names else 0
    )
    detail = api.registered_model(name)
    versions = {v["version"]: v for v in detail["versions"]}
    numbers = list(versions)
    asked = st.query_params.get("version") if name == asked_name else None
    default = (detail.get("production") or detail.get("latest") or detail["versions"][0])["version"]
    wanted = int(asked) if asked and asked.isdigit() and int(asked) in versions else default
    number = right.selectbox(
        "Version",
        numbers,
        index=numbers.index(wanted),
        format_func=lambda n: f"v{n} · {mv.stage_words(versions[n]['stage'])}",
    )
    st.query_params["name"] = name
    st.query_params["version"] = str(number)
    return detail, versions[number]


def lineage(version: dict[str, Any], card: dict[str, Any], ui_url: str | None) -> None:
    """Data set version → experiment → this version → MLflow, each linked where it can be."""
    st.markdown("**Lineage**")
    cols = st.columns(4)
    data = mv.data_versions(card)
    with cols[0]:
        st.caption("Data")
        if not data:
            st.markdown(NOTHING)
        for part, words in (("train", "train"), ("eval", "eval")):
            if found := data.get(part):
                rows = found.get("rows")
                size = f" · {rows:,} rows" if isinstance(rows, int) else ""
                st.markdown(f"{words} `{mv.short(found.get('version'))}`{size}")
    with cols[1]:
        st.caption("Experiment")
        experiment_id = version["experiment_id"]
        # Experiments stay private to their owner: the link opens only for them (and admins).
        if mv.may_edit_card(me, version):
            st.page_link(
                "views/experiments.py",
                label=experiment_id,
                icon=":material/science:",
                query_params={"experiment": experiment_id},
            )
        else:
            st.markdown(f"`{experiment_id}`  \n(private to {version.get('owner') or 'its owner'})")
    with cols[2]:
        st.caption("Version")
        st.markdown(f"{version['name']} v{version['version']} {mv.badge(version['stage'])}")
    with cols[3]:
        st.caption("MLflow")
        run_id = version.get("mlflow_run_id")
        run_url = mlflow_run_url(run_id) if mv.may_edit_card(me, version) else None
        model_url = mv.mlflow_version_url(
            ui_url, version["name"], version.get("mlflow_version") or None
        )
        links = []
        if run_url:
            links.append(f"[run {run_id[:8]}]({run_url})")
        elif run_id:
            links.append(f"run `{run_id[:8]}`")
        if model_url:
            links.append(f"[model version {version.get('mlflow_version')}]({model_url})")
        st.markdown(" · ".join(links) or NOTHING)


def mlflow_run_url(run_id: str | None) -> str | None:
    """The run's page in the MLflow UI, asked once per session (it never changes)."""
    if not run_id:
        return None
    known = st.session_state.setdefault(MLFLOW_URLS, {})
    if run_id not in known:
        try:
            known[run_id] = api.mlflow_run(run_id).get("ui_url")
        except ApiError:  # MLflow away, or the run is gone: the page shows the id instead
            return None
    return known[run_id]


def card_section(version: dict[str, Any], answer: dict[str, Any]) -> None:
    card = answer.get("card") or {}
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Labels**")
        counts = mv.label_counts(card, version.get("labels"))
        tables.show(counts, formats=mv.COUNT_FORMATS, pinned="Label")
        st.markdown("**Per class** (on the evaluation data)")
        tables.show(mv.per_class_rows(card), formats=mv.PER_CLASS_FORMATS, pinned="Label")
    if matrix := mv.confusion(card):
        right.altair_chart(charts.confusion_matrix(*matrix), width="content")
    with st.expander("The whole card (JSON)"):
        st.json({k: v for k, v in card.items() if k != "embedding"}, expanded=False)
    st.download_button(
        "Download the card (README.md)",
        data=answer.get("readme") or "",
        file_name=f"{version['name']}-v{version['version']}-README.md",
        mime="text/markdown",
        icon=":material/download:",
    )


def transition_panel(version: dict[str, Any]) -> None:
    ref = mv.reference(version)
    refused = st.session_state.get(REFUSED)
    if refused and refused["ref"] != ref:
        st.session_state.pop(REFUSED, None)
        refused = None
    moves = mv.allowed_moves(me, version)
    if not moves:
        if mv.owns(me, version) and version["stage"] in (mv.STAGING, mv.PRODUCTION):
            st.caption("Production and Archived are for an admin: ask one to move it.")
        elif not mv.owns(me, version):
            st.caption(
                f"Only its owner ({version.get('owner') or 'the CLI'}) moves it to Staging; "
                "an admin to Production or Archived."
            )
        return
    made = st.session_state.get(MOVES, 0)
    reason = st.text_input(
        "Reason (kept in the history)",
        key=f"reason-{ref}-{made}",
        placeholder="Why this change: what was checked, what it replaces",
    )
    force = False
    if refused:
        st.error(
            refused["message"] + (f"  \n{refused['hint']}" if refused.get("hint") else ""),
            icon=":material/block:",
        )
        if refused.get("forceable"):
            force = st.checkbox(
                "Promote anyway (force): the reason above is required and recorded",
                key=f"force-{ref}-{made}",
            )
    buttons = st.columns(len(moves) + 2)
    for column, target in zip(buttons, moves, strict=False):
        label = mv.move_label(version["stage"], target)
        if column.button(
            label,
            key=f"move-{ref}-{target}",
            type="primary" if target in (mv.STAGING, mv.PRODUCTION) else "secondary",
            icon=":material/archive:" if target == mv.ARCHIVED else ":material/upgrade:",
        ):
            forced = force and target == mv.PRODUCTION
            if forced and not reason.strip():
                # Checked here: the API would refuse it in words meant for its own clients.
                st.error("A forced promotion needs a reason: write it above, then promote.")
                return
            move(version, target, reason.strip() or None, forced)


def move(version: dict[str, Any], target: str, reason: str | None, force: bool) -> None:
    ref = mv.reference(version)
    try:
        moved = api.transition(
            version["name"], version["version"], target, reason=reason, force=force
        )
    except ApiError as error:
        if error.status != 409:  # 403, 422, 503: said here and now
            session.show_error(error)
            return
        # A refusal stays next to the buttons (with "force" for an admin at the gate)
        # until this version moves or another one is opened.
        st.session_state[REFUSED] = {
            "ref": ref,
            "message": error.message,
            "hint": error.hint,
            "forceable": target == mv.PRODUCTION and mv.is_admin(me),
        }
        st.rerun()
    st.session_state.pop(REFUSED, None)
    st.session_state[MOVES] = st.session_state.get(MOVES, 0) + 1
    st.session_state[DONE] = (
        f"{moved['name']} v{moved['version']}: {mv.stage_words(version['stage'])} → "
        f"{mv.stage_words(moved['stage'])}" + (" (forced)" if force else "") + "."
    )
    st.rerun()


def card_text(version: dict[str, Any], card: dict[str, Any]) -> None:
    """Intended use and limitations: shown to all, edited by the owner or an admin. Until
    someone writes them the card states them from its facts (labels, language, data)."""
    ref = mv.reference(version)
    intended = version.get("intended_use") or card.get("intended_use")
    limits = version.get("limitations") or card.get("limitations")
    left, right = st.columns(2)
    left.markdown("**Intended use**")
    left.markdown(intended or "_Not written yet._")
    right.markdown("**Limitations**")
    right.markdown(limits or "_Not written yet._")
    if not (version.get("intended_use") or version.get("limitations")):
        st.caption("Written from the version's facts until its owner writes them.")
    if not mv.may_edit_card(me, version):
        return
    with st.expander("Edit intended use and limitations"), st.form(f"card-{ref}"):
        new_use = st.text_area("Intended use", value=intended or "")
        new_limits = st.text_area("Limitations", value=limits or "")
        if st.form_submit_button("Save the card", icon=":material/save:"):
            try:
                api.update_card(
                    version["name"],
                    version["version"],
                    intended_use=new_use.strip(),
                    limitations=new_limits.strip(),
                )
            except ApiError as error:
                st.error(mv.refusal_words(error, CARD_FIELDS), icon=":material/error:")
            else:
                st.session_state[DONE] = f"Card of {version['name']} v{version['version']} saved."
                st.rerun()


def one_version() -> None:
    st.header("Version")
    detail, version = pick_version()
    name, number = version["name"], version["version"]
    st.subheader(f"{name} v{number}")
    # The version's own description; the model's when the version has none.
    description = version.get("description") or detail.get("description")
    st.markdown(mv.badge(version["stage"]) + (f" &nbsp; {description}" if description else ""))
    metrics = version.get("metrics") or {}
    cols = st.columns(4)
    cols[0].metric("Stage", mv.stage_words(version["stage"]))
    f1, accuracy = mv.score(metrics, "f1_macro"), mv.score(metrics, "accuracy")
    cols[1].metric("Macro-F1", NOTHING if f1 is None else f"{f1:.3f}")
    cols[2].metric("Accuracy", NOTHING if accuracy is None else f"{accuracy:.1%}")
    cols[3].metric("Base model", tables.model_name(version.get("base_model")))
    facts = [
        f"Registered {when(version.get('created_at'))} by {version.get('owner') or 'the CLI'}",
        f"language {version.get('language') or NOTHING}",
        f"task {version.get('task') or NOTHING}",
        f"eval data `{mv.short(metrics.get('eval_data_version'))}`",
    ]
    if version.get("tags"):
        facts.append(f"tags {mv.tag_words(version['tags'])}")
    st.caption(" · ".join(facts))

    with st.container(border=True):
        st.markdown("**Stage**")
        transition_panel(version)
    if version["stage"] != mv.ARCHIVED:
        st.page_link(
            "views/try_it.py",
            label=f"Try {name} v{number}",
            icon=":material/chat:",
            query_params={"model": mv.reference(version)},
        )

    try:
        ui_url = api.mlflow().get("ui_url")
    except ApiError:
        ui_url = None
    answer = api.model_card(name, number)
    card = answer.get("card") or {}
    lineage(version, card, ui_url)
    card_section(version, answer)
    card_text(version, card)

    st.subheader("History")
    history = api.model_history(name)
    st.markdown(mv.timeline(history) or "_Nothing yet._")


if not models:
    st.info(EMPTY, icon=":material/info:")
    st.stop()

registry()
search_tab, recommend_tab = st.tabs(["Search versions", "Recommend a model"])
with search_tab:
    search()
with recommend_tab:
    recommend()
one_version()
