"""Every time our code writes into JSON reads as the API's do: UTC, ending in "Z"."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime

from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from loraforge.cli.app import app
from loraforge.db.engine import get_engine
from loraforge.jobs.progress import JobProgress

runner = CliRunner()


def is_z_time(value: str) -> bool:
    return value.endswith("Z") and "T" in value and datetime.fromisoformat(value).tzinfo


def test_a_jobs_progress_is_stamped_in_z_time():
    # Stored as the row's JSON and passed through GET /task/{id} as it is.
    progress = JobProgress()
    progress.started(experiment_id="x", total_steps=3, epochs=1)
    assert is_z_time(progress.snapshot()["updated_at"]), progress.snapshot()


def test_cli_json_times_are_z_times(env_settings):
    from loraforge.auth import users
    from loraforge.data import store
    from loraforge.data.loading import Columns

    with sessionmaker(bind=get_engine(env_settings.resolved_database_url()))() as session:
        owner = users.create_user(
            session, username=f"u{uuid.uuid4().hex[:8]}", password="long enough password"
        )
        dataset = store.store_upload(
            session,
            owner_id=owner.id,
            file_name="times.csv",
            content=io.BytesIO(b"text,label\ngood,pos\nbad,neg\nfine,pos\nawful,neg\n"),
            columns=Columns("text", "label"),
            datasets_dir=env_settings.resolved_datasets_dir(),
            max_bytes=10**6,
        )
        session.commit()
    listed = runner.invoke(app, ["datasets", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = [d for d in json.loads(listed.output) if d["id"] == dataset.id]
    assert is_z_time(row["created_at"]), row["created_at"]
