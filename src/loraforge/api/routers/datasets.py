"""Data sets: multipart upload (validated, versioned, stored), list, one."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from loraforge.api.deps import AuditDep, CurrentUser, SessionDep, SettingsDep
from loraforge.api.schemas import DatasetAnalysis, DatasetPublic, DatasetsPublic
from loraforge.audit import log as audit
from loraforge.data import store
from loraforge.data.loading import Columns
from loraforge.errors import LoraforgeError

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post("", response_model=DatasetPublic, status_code=201)
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


@router.get("", response_model=DatasetsPublic)
def list_datasets(user: CurrentUser, session: SessionDep) -> DatasetsPublic:
    found = store.list_datasets(session, user_id=user.id, is_admin=user.is_admin)
    return DatasetsPublic(data=[DatasetPublic(**asdict(d)) for d in found], count=len(found))


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: str, user: CurrentUser, session: SessionDep) -> DatasetPublic:
    record = store.get_dataset(
        session, dataset_id=dataset_id, user_id=user.id, is_admin=user.is_admin
    )
    return DatasetPublic(**asdict(record))


@router.get("/{dataset_id}/analysis", response_model=DatasetAnalysis)
def analyze_dataset(
    dataset_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> DatasetAnalysis:
    record = store.get_dataset(
        session, dataset_id=dataset_id, user_id=user.id, is_admin=user.is_admin
    )
    return DatasetAnalysis(
        id=record.id,
        **store.analyze_dataset(session, record, datasets_dir=settings.resolved_datasets_dir()),
    )
