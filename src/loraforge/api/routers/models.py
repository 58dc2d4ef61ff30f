"""The model registry: named models, their numbered versions, stages, history, cards,
search and recommendation.

Registered models are the team's: every signed-in user can read, search and predict
with them. Experiments stay private until registered. Who may change what is decided in
`loraforge.registry.service`, which also writes the audit rows; this module only turns
requests into service calls and records into answers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from loraforge.api.deps import ClientDep, CurrentUser, SettingsDep
from loraforge.api.errors import error_responses
from loraforge.api.routers.experiments import without_server_paths
from loraforge.api.schemas import (
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    MODEL_NAME_WORDS,
    CardPublic,
    CardUpdate,
    ModelVersionPublic,
    RecommendationPublic,
    RecommendationsPublic,
    RecommendRequest,
    RegisteredModelDetailPublic,
    RegisteredModelPublic,
    RegisteredModelsPublic,
    RegisterRequest,
    SearchPage,
    SnapshotMetric,
    Stage,
    TransitionPublic,
    TransitionRequest,
    TransitionsPublic,
)
from loraforge.config import MODEL_NAME_PATTERN
from loraforge.field_errors import describe_pattern
from loraforge.registry import recommend as registry_recommend
from loraforge.registry import search as registry_search
from loraforge.registry import service
from loraforge.registry.records import ModelSummary, VersionInfo

router = APIRouter(prefix="/models", tags=["model registry"], responses=error_responses(401))

NamePath = Annotated[
    str,
    Path(
        pattern=MODEL_NAME_PATTERN,
        max_length=64,
        description=f"The registered model's name: {MODEL_NAME_WORDS}",
        examples=["tweet-sentiment"],
    ),
]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="1, 2, 3 …")]
# "team:support": a key and a value, as in the registration's `tags`.
TAG_PATTERN = describe_pattern(
    rf"^[^:]{{1,{MAX_TAG_KEY}}}:.{{0,{MAX_TAG_VALUE}}}$",
    f"the form `key:value` (key 1-{MAX_TAG_KEY} characters, value at most {MAX_TAG_VALUE})",
)


def version_public(info: VersionInfo) -> ModelVersionPublic:
    """A version as clients see it: no server paths (a base model may be a local folder)."""
    fields = {
        name: getattr(info, name)
        for name in ModelVersionPublic.model_fields
        if name not in ("reference", "base_model")
    }
    return ModelVersionPublic(
        **fields, reference=info.reference, base_model=without_server_paths(info.base_model)
    )


def _summary_fields(model: ModelSummary) -> dict:
    return {
        "name": model.name,
        "description": model.description,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "version_count": model.version_count,
        "latest": version_public(model.latest) if model.latest else None,
        "production": version_public(model.production) if model.production else None,
        "staging": list(model.staging),
    }


def _card_public(card) -> CardPublic:
    return CardPublic(card=without_server_paths(card.data), readme=card.readme)


@router.post(
    "",
    status_code=201,
    response_model=ModelVersionPublic,
    summary="Register an experiment as a model version",
    responses=error_responses(404, 409, 422, 503),
)
def register(
    body: RegisterRequest, user: CurrentUser, settings: SettingsDep, client: ClientDep
) -> ModelVersionPublic:
    """Registers a succeeded experiment of yours (an admin: anyone's) as the next version
    (1, 2, 3 …) of the model `name`, creating the model on its first version. The version
    starts in stage `none`, with its metric snapshot frozen, a model card written and an
    MLflow registered-model version created from the experiment's run. A failed or
    running experiment is refused (409); another user's answers as missing (404). If
    MLflow cannot be reached nothing is registered (503). Audited."""
    info = service.register_version(
        settings,
        experiment_id=body.experiment_id,
        name=body.name,
        description=body.description,
        tags=body.tags,
        task=body.task,
        user=user,
        client=client,
    )
    return version_public(info)


@router.get("", response_model=RegisteredModelsPublic, summary="List registered models")
def list_models(_user: CurrentUser, settings: SettingsDep) -> RegisteredModelsPublic:
    """Every registered model, whoever registered it, with its newest version, its
    Production version (if any) and the versions in Staging."""
    found = service.list_models(settings)
    return RegisteredModelsPublic(
        data=[RegisteredModelPublic(**_summary_fields(m)) for m in found], count=len(found)
    )


# Declared before /models/{name}: otherwise "search" would be read as a model's name.
@router.get(
    "/search",
    response_model=SearchPage,
    summary="Search model versions",
    responses=error_responses(422),
)
def search(
    _user: CurrentUser,
    settings: SettingsDep,
    name: Annotated[
        str | None, Query(max_length=64, description="Part of the model's name.")
    ] = None,
    base_model: Annotated[str | None, Query(max_length=200)] = None,
    language: Annotated[str | None, Query(max_length=16, examples=["en"])] = None,
    task: Annotated[str | None, Query(max_length=64, examples=["sentiment"])] = None,
    tag: Annotated[
        list[Annotated[str, Query(pattern=TAG_PATTERN)]] | None,
        Query(
            max_length=MAX_TAGS,
            description="`key:value`; repeat for several (all must match).",
            examples=[["team:support"]],
        ),
    ] = None,
    stage: Annotated[Stage | None, Query()] = None,
    include_archived: Annotated[
        bool, Query(description="Archived versions are left out unless asked for.")
    ] = False,
    metric: Annotated[
        SnapshotMetric, Query(description="The metric to filter and sort by.")
    ] = "f1_macro",
    min_metric: Annotated[
        float | None, Query(ge=0.0, le=1.0, description="Only versions scoring at least this.")
    ] = None,
    sort: Annotated[Literal["metric", "date"], Query()] = "metric",
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    experiment_id: Annotated[
        str | None,
        Query(max_length=100, description="Versions registered from this experiment."),
    ] = None,
) -> SearchPage:
    """Versions of every registered model matching all the filters given, best `metric`
    (or newest, with `sort=date`) first, one page at a time: `total` says how many match
    on all pages."""
    tags = dict(item.split(":", 1) for item in tag or [])
    page = registry_search.search(
        settings,
        name=name,
        base_model=base_model,
        language=language,
        task=task,
        tags=tags or None,
        stage=stage,
        include_archived=include_archived,
        metric=metric,
        min_metric=min_metric,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        offset=offset,
        experiment_id=experiment_id,
    )
    return SearchPage(
        data=[version_public(v) for v in page.items],
        count=len(page.items),
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/recommend",
    response_model=RecommendationsPublic,
    summary="Recommend models for a need or a data set",
    responses=error_responses(404, 422),
)
def recommend(
    body: RecommendRequest, user: CurrentUser, settings: SettingsDep
) -> RecommendationsPublic:
    """Registered model versions ranked by how well they fit: a need in plain words
    (`query`), a vector from the same sentence model (`embedding`), or an uploaded data
    set of yours (`dataset_id`: its texts and label names are compared with each card).
    `language` and `stage` are hard filters. Each answer says why it ranks where it does."""
    found = registry_recommend.recommend(
        settings,
        query=body.query,
        embedding=body.embedding,
        dataset_id=body.dataset_id,
        user=user,
        language=body.language,
        stage=body.stage,
        include_archived=body.include_archived,
        limit=body.limit,
    )
    return RecommendationsPublic(
        data=[
            RecommendationPublic(
                model=version_public(r.version), score=r.score, reasons=list(r.reasons)
            )
            for r in found
        ],
        count=len(found),
    )


@router.post(
    "/transition",
    response_model=ModelVersionPublic,
    summary="Move a version to another stage",
    responses=error_responses(403, 404, 409, 422, 503),
)
def transition(
    body: TransitionRequest, user: CurrentUser, settings: SettingsDep, client: ClientDep
) -> ModelVersionPublic:
    """`none → Staging → Production → Archived`, and `Archived → Staging` to restore.
    Anyone moves their own versions to Staging; Production and Archived need an admin
    (403 otherwise). A move not in that table is 409, naming the allowed ones.

    Promoting to Production archives the previous Production version in the same step,
    and passes a gate: a candidate whose f1_macro is below the current Production's on
    the same eval data is refused (409, with both numbers), as is one evaluated on other
    eval data, unless an admin sends `force` with a `reason`. Both metric snapshots go
    into the history. If MLflow cannot be reached nothing changes (503). Audited, refusals
    too."""
    info = service.transition_version(
        settings,
        name=body.name,
        version=body.version,
        stage=body.stage,
        reason=body.reason,
        force=body.force,
        user=user,
        client=client,
    )
    return version_public(info)


@router.get(
    "/{name}",
    response_model=RegisteredModelDetailPublic,
    summary="One registered model with all its versions",
    responses=error_responses(404, 422),
)
def get_model(name: NamePath, _user: CurrentUser, settings: SettingsDep):
    """The model, its newest and Production versions, and every version newest first."""
    model = service.get_model(settings, name)
    return RegisteredModelDetailPublic(
        **_summary_fields(model), versions=[version_public(v) for v in model.versions]
    )


@router.get(
    "/{name}/versions/{version}",
    response_model=ModelVersionPublic,
    summary="One model version",
    responses=error_responses(404, 422),
)
def get_version(
    name: NamePath, version: VersionPath, _user: CurrentUser, settings: SettingsDep
) -> ModelVersionPublic:
    """Stage, metric snapshot, lineage (experiment, base model, MLflow run) and owner."""
    return version_public(service.get_version(settings, name, version))


@router.get(
    "/{name}/history",
    response_model=TransitionsPublic,
    summary="A model's history",
    responses=error_responses(404, 422),
)
def history(name: NamePath, _user: CurrentUser, settings: SettingsDep) -> TransitionsPublic:
    """Every registration and stage change of every version, newest first: who, when,
    from which stage to which, why, and the metric snapshots compared."""
    found = service.history(settings, name)
    return TransitionsPublic(
        data=[
            TransitionPublic(
                id=t.id,
                name=t.name,
                version=t.version,
                from_stage=t.from_stage,
                to_stage=t.to_stage,
                actor=t.actor_username,
                at=t.at,
                reason=t.reason,
                metrics=t.metrics,
                previous_production_metrics=t.previous_production_metrics,
                forced=t.forced,
            )
            for t in found
        ],
        count=len(found),
    )


CARD_RESPONSES = {
    **error_responses(404, 422),
    200: {
        "description": "The card as JSON with its README, or (`format=markdown`) the "
        "README.md alone.",
        "content": {"text/markdown": {"schema": {"type": "string"}}},
    },
}


@router.get(
    "/{name}/versions/{version}/card",
    response_model=CardPublic,
    summary="A version's model card",
    responses=CARD_RESPONSES,
)
def get_card(
    name: NamePath,
    version: VersionPath,
    _user: CurrentUser,
    settings: SettingsDep,
    format: Annotated[
        Literal["json", "markdown"],
        Query(description="`markdown`: the README.md alone, as text/markdown."),
    ] = "json",
):
    """The model card: `card` (base model, language, task, metrics per class, confusion
    matrix, labels with counts, data set versions, LoRA settings, lineage, intended use,
    limitations …) and `readme`, the same card in the Hugging Face format (YAML header
    with `model-index`, then prose)."""
    card = service.read_card(settings, name, version)
    if format == "markdown":
        return Response(content=card.readme, media_type="text/markdown; charset=utf-8")
    return _card_public(card)


@router.patch(
    "/{name}/versions/{version}/card",
    response_model=CardPublic,
    summary="Edit a version's intended use and limitations",
    responses=error_responses(403, 404, 422),
)
def update_card(
    name: NamePath,
    version: VersionPath,
    body: CardUpdate,
    user: CurrentUser,
    settings: SettingsDep,
    client: ClientDep,
) -> CardPublic:
    """The owner of the version (or an admin) sets its `intended_use` and `limitations`;
    the card's JSON and README are rewritten. Audited."""
    card = service.update_card(
        settings,
        name,
        version,
        intended_use=body.intended_use,
        limitations=body.limitations,
        user=user,
        client=client,
    )
    return _card_public(card)
