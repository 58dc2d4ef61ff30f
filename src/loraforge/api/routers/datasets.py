"""Data sets: multipart upload (validated, versioned, stored), list, one, delete."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from loraforge.api.deps import AuditDep, CurrentUser, SessionDep, SettingsDep
from loraforge.api.errors import error_responses
from loraforge.api.schemas import (
    DatasetAnalysis,
    DatasetLanguage,
    DatasetPublic,
    DatasetsPublic,
)
from loraforge.audit import log as audit
from loraforge.data import store
from loraforge.data.loading import COLUMNS_HINTS, Columns
from loraforge.errors import Conflict, LoraforgeError

logger = logging.getLogger("loraforge.api.datasets")

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=error_responses(401))


@router.post(
    "",
    response_model=DatasetPublic,
    status_code=201,
    summary="Upload a data set",
    responses=error_responses(400, 413, 422),
)
def upload_dataset(
    file: Annotated[
        UploadFile, File(description="CSV, TSV, JSONL or Parquet with a text and a label column.")
    ],
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    record: AuditDep,
    text_column: Annotated[str, Form(max_length=255)] = "text",
    label_column: Annotated[str, Form(max_length=255)] = "label",
) -> DatasetPublic:
    """A CSV, TSV, JSONL or Parquet file with a text and a label column (`text_column`,
    `label_column`). It is validated before it is stored: a file that cannot be trained on
    answers 422 saying why; one that can answers its rows, content version, label counts
    and warnings. Stored under a generated name; audited."""
    name = file.filename or ""
    try:
        stored = store.store_upload(
            session,
            owner_id=user.id,
            file_name=name,
            content=file.file,
            columns=Columns(text=text_column, label=label_column),
            datasets_dir=settings.resolved_datasets_dir(),
            max_bytes=settings.max_upload_bytes,
            columns_hint=COLUMNS_HINTS["api"],  # in the words of this form, not the CLI's
        )
    except LoraforgeError as error:
        record(
            "dataset.upload",
            audit.FAILURE,
            actor=user,
            target=name[:255] or None,
            detail={"reason": error.message[:500]},
        )
        session.commit()
        raise
    record(
        "dataset.upload",
        audit.SUCCESS,
        actor=user,
        target=f"dataset:{stored.id}",
        detail={"name": stored.name, "version": stored.version, "rows": stored.rows},
    )
    session.commit()
    return DatasetPublic(**asdict(stored))


@router.get("", response_model=DatasetsPublic, summary="List data sets")
def list_datasets(user: CurrentUser, session: SessionDep) -> DatasetsPublic:
    """Your uploaded data sets, newest first (an admin sees everyone's)."""
    found = store.list_datasets(session, user_id=user.id, is_admin=user.is_admin)
    return DatasetsPublic(data=[DatasetPublic(**asdict(d)) for d in found], count=len(found))


@router.get(
    "/{dataset_id}",
    response_model=DatasetPublic,
    summary="One data set",
    responses=error_responses(404),
)
def get_dataset(dataset_id: str, user: CurrentUser, session: SessionDep) -> DatasetPublic:
    """Rows, version, label counts and warnings of one data set: yours (an admin: any)."""
    record = store.get_dataset(
        session, dataset_id=dataset_id, user_id=user.id, is_admin=user.is_admin
    )
    return DatasetPublic(**asdict(record))


@router.get(
    "/{dataset_id}/analysis",
    response_model=DatasetAnalysis,
    summary="Label shares and text lengths of a data set",
    responses=error_responses(404),
)
def analyze_dataset(
    dataset_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> DatasetAnalysis:
    """Label counts and shares, text lengths in characters and words (statistics and
    histograms): what the web UI charts before training."""
    record = store.get_dataset(
        session, dataset_id=dataset_id, user_id=user.id, is_admin=user.is_admin
    )
    return DatasetAnalysis(
        id=record.id,
        **store.analyze_dataset(session, record, datasets_dir=settings.resolved_datasets_dir()),
    )


@router.get(
    "/{dataset_id}/language",
    response_model=DatasetLanguage,
    summary="The data set's language and a base model's coverage of it",
    responses=error_responses(404, 422),
)
def dataset_language(
    dataset_id: str,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    base_model: Annotated[
        str,
        Query(
            min_length=1,
            max_length=300,
            description="auto (the catalog model for the language), a catalog name, a "
            "Hugging Face id or a server folder.",
        ),
    ] = "auto",
) -> DatasetLanguage:
    """What training would find before it starts: the detected language(s), the base
    model `auto` picks, and how much of the text that model's tokenizer can read
    (`refused`: training would be refused unless `model.allow_low_coverage`). The web
    UI's New job page shows it before anything runs."""
    from loraforge.data.coverage import REFUSE_SHARE
    from loraforge.training.language_check import check_language

    record = store.get_dataset(
        session, dataset_id=dataset_id, user_id=user.id, is_admin=user.is_admin
    )
    texts = store.dataset_texts(session, record, datasets_dir=settings.resolved_datasets_dir())
    found = check_language(texts, base_model, allow_low_coverage=True)
    return DatasetLanguage(
        **found.to_dict(),
        refused=bool(found.coverage and found.coverage.unread_share > REFUSE_SHARE),
    )


@router.delete(
    "/{dataset_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a data set",
    responses=error_responses(404, 409),
)
def delete_dataset(
    dataset_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep, record: AuditDep
) -> Response:
    """Deletes the stored file and its record; yours (an admin: any). Refused with 409
    while a queued or running job trains or evaluates on it. Finished jobs keep their
    history (config, data set version) with `dataset_id` null. Audited, refusals too."""
    try:
        stored = store.delete_dataset(
            session,
            dataset_id=dataset_id,
            user_id=user.id,
            is_admin=user.is_admin,
            datasets_dir=settings.resolved_datasets_dir(),
        )
    except LoraforgeError as error:
        session.rollback()
        record(
            "dataset.delete",
            audit.DENIED if isinstance(error, Conflict) else audit.FAILURE,
            actor=user,
            target=f"dataset:{dataset_id[:200]}",
            detail={"reason": error.message[:500]},
        )
        session.commit()
        raise
    record("dataset.delete", audit.SUCCESS, actor=user, target=f"dataset:{dataset_id}")
    session.commit()
    # After the commit: a crash in between leaves a file nothing points to, not the reverse.
    warning = store.remove_stored_file(stored)
    if warning:
        logger.warning("deleting data set %s: %s", dataset_id, warning)
    return Response(status_code=204)
