"""The job state machine on a real database: compare-and-set claims, leases, reaping, cancel."""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import add_dataset
from sqlalchemy.orm import sessionmaker

from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.jobs import state


@pytest.fixture
def session(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    with sessionmaker(bind=engine, expire_on_commit=False)() as s:
        owner = users.create_user(s, username="owner", password="long enough", role="user")
        add_dataset(s, owner_id=owner.id)
        s.commit()
        s.info["owner"] = owner.id
        yield s


def new_job(session, max_attempts=2):
    job = state.create(
        session,
        owner_id=session.info["owner"],
        config={},
        dataset_id="d1",
        eval_dataset_id=None,
        dataset_version="v" * 64,
        experiment_id=f"e-{uuid.uuid4().hex[:8]}",
        max_attempts=max_attempts,
    )
    session.commit()
    return job


def test_only_one_worker_can_claim_a_job(session):
    job = new_job(session)
    first = state.claim(session, job.id, worker="w1", lease_s=30)
    assert first is not None and first.status == "running" and first.attempts == 1
    assert state.claim(session, job.id, worker="w2", lease_s=30) is None


def test_heartbeat_renews_only_the_owners_lease_and_relays_cancel(session):
    job = new_job(session)
    claimed = state.claim(session, job.id, worker="w1", lease_s=1)
    beat = state.heartbeat(session, job.id, worker="w1", lease_s=60, progress={"step": 3})
    assert beat.still_ours and not beat.cancel_requested
    renewed = state.get(session, job.id)
    assert renewed.lease_expires_at > claimed.lease_expires_at and renewed.progress == {"step": 3}
    assert not state.heartbeat(session, job.id, worker="w2", lease_s=60, progress=None).still_ours
    assert state.request_cancel(session, job.id).status == "running"
    assert state.heartbeat(session, job.id, worker="w1", lease_s=60, progress=None).cancel_requested


def test_cancelling_a_queued_job_is_immediate_and_it_can_no_longer_be_claimed(session):
    job = new_job(session)
    assert state.request_cancel(session, job.id).status == "cancelled"
    assert state.claim(session, job.id, worker="w1", lease_s=30) is None


def test_finish_needs_the_running_owner(session):
    job = new_job(session)
    state.claim(session, job.id, worker="w1", lease_s=30)
    assert not state.finish(session, job.id, worker="w2", status="succeeded")
    assert state.finish(session, job.id, worker="w1", status="succeeded")
    assert state.get(session, job.id).status == "succeeded"
    assert not state.finish(session, job.id, worker="w1", status="failed")  # finished is final


def test_reaper_requeues_a_dead_workers_job_then_fails_it_after_max_attempts(session):
    job = new_job(session, max_attempts=2)
    state.claim(session, job.id, worker="w1", lease_s=0.05)
    time.sleep(0.1)
    assert state.reap_expired(session) == [job.id]
    assert state.get(session, job.id).status == "queued"
    state.claim(session, job.id, worker="w2", lease_s=0.05)
    time.sleep(0.1)
    assert state.reap_expired(session) == []
    failed = state.get(session, job.id)
    assert failed.status == "failed" and "died 2 time(s)" in failed.error and failed.attempts == 2


def test_reaper_leaves_live_leases_alone_and_honours_cancel(session):
    live, doomed = new_job(session), new_job(session)
    state.claim(session, live.id, worker="w1", lease_s=60)
    state.claim(session, doomed.id, worker="w2", lease_s=0.05)
    state.request_cancel(session, doomed.id)
    time.sleep(0.1)
    assert state.reap_expired(session) == []
    assert state.get(session, live.id).status == "running"
    assert state.get(session, doomed.id).status == "cancelled"


def test_transient_failure_requeues_until_attempts_run_out(session):
    job = new_job(session, max_attempts=2)
    state.claim(session, job.id, worker="w1", lease_s=30)
    assert (
        state.release_for_retry(session, job.id, worker="w1", error="OperationalError: db away")
        == "queued"
    )
    state.claim(session, job.id, worker="w1", lease_s=30)
    assert (
        state.release_for_retry(session, job.id, worker="w1", error="OperationalError: db away")
        == "failed"
    )
    assert "after 2 attempts" in state.get(session, job.id).error


def test_other_users_jobs_are_not_found(session):
    job = new_job(session)
    with pytest.raises(Exception, match="does not exist"):
        state.get(session, job.id, user_id=999, is_admin=False)
    assert state.get(session, job.id, user_id=session.info["owner"], is_admin=False).id == job.id
