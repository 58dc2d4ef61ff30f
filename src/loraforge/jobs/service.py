"""Submitting jobs and turning a job into a training config. No FastAPI, no Celery here."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.config import TrainConfig, config_from_tree
from loraforge.data import store
from loraforge.errors import Conflict
from loraforge.jobs import state
from loraforge.jobs.state import JobRecord
from loraforge.settings import Settings
from loraforge.training.preflight import check_run
from loraforge.training.runner import new_experiment_id

ID_RACE_RETRIES = 5


def _training_tree(
    session: Session, submitted: dict[str, Any], *, user_id: int, is_admin: bool, settings: Settings
) -> tuple[dict[str, Any], store.DatasetRecord]:
    """The submitted config with data set ids replaced by their stored files (server-side only)."""
    tree = copy.deepcopy(submitted)
    data = tree["data"]
    datasets_dir = settings.resolved_datasets_dir()
    train = store.get_dataset(
        session, dataset_id=data.pop("dataset_id"), user_id=user_id, is_admin=is_admin
    )
    data["train_file"] = str(store.dataset_path(train, datasets_dir=datasets_dir, session=session))
    data["text_column"], data["label_column"] = train.text_column, train.label_column
    eval_id = data.pop("eval_dataset_id", None)
    if eval_id:
        evaluation = store.get_dataset(
            session, dataset_id=eval_id, user_id=user_id, is_admin=is_admin
        )
        data["eval_file"] = str(
            store.dataset_path(evaluation, datasets_dir=datasets_dir, session=session)
        )
    return tree, train


def submit(
    session: Session, *, submitted: dict[str, Any], user_id: int, is_admin: bool, settings: Settings
) -> JobRecord:
    """Validate and record a job (status queued). The caller enqueues it after commit."""
    tree, train = _training_tree(
        session, submitted, user_id=user_id, is_admin=is_admin, settings=settings
    )
    config = config_from_tree(tree, source="the job")  # refuse now what the worker would refuse
    # A misspelt or unloadable base model, or one whose tokenizer cannot read the data
    # (`auto` resolved from the data's language): a 422 naming model.base_model now, not
    # a job that fails after the worker has imported torch and recorded an experiment.
    check_run(config)
    # Another API replica may pick the same id between our check and our insert; the
    # unique index catches it, and the next candidate is taken.
    for _ in range(ID_RACE_RETRIES):
        experiment_id = new_experiment_id(
            submitted["experiment_name"],
            settings.resolved_results_dir(),
            settings.resolved_database_url(),
        )
        try:
            with session.begin_nested():
                return state.create(
                    session,
                    owner_id=user_id,
                    config=submitted,
                    dataset_id=train.id,
                    eval_dataset_id=submitted["data"].get("eval_dataset_id"),
                    dataset_version=train.version,
                    experiment_id=experiment_id,
                    max_attempts=settings.job_max_attempts,
                )
        except IntegrityError as error:
            if "experiment_id" not in str(error.orig):  # SQLite and PostgreSQL both name it
                raise
            continue
    raise Conflict(
        "could not allocate an experiment id: too many jobs of this name at once",
        hint="Try again in a second.",
    )


def training_config(session: Session, job: JobRecord, *, settings: Settings) -> TrainConfig:
    # The owner's rights were checked at submission; the worker acts for them.
    tree, _ = _training_tree(
        session, job.config, user_id=job.owner_id, is_admin=True, settings=settings
    )
    config = config_from_tree(tree, source=f"task {job.id}")
    # The model may have left the cache (or the hub become unreachable) since the job was
    # submitted: the job fails now, before the runner records an experiment. The same
    # language and coverage check as at submission, and `auto` resolved the same way.
    config, _ = check_run(config)
    return config
