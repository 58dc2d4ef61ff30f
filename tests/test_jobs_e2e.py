"""Jobs end to end: the API in this process, real `loraforge worker` processes beside it.

The embedded mode (kombu's filesystem transport, SQLite) runs always; the same flow runs
against the Redis server on 127.0.0.1 where one answers.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_texts
from fastapi.testclient import TestClient
from services import REDIS_URL, available, fresh_postgres_database
from sqlalchemy.orm import sessionmaker

from loraforge.api.app import create_app
from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.jobs import state
from loraforge.monitoring.logs import TaskIdFilter
from loraforge.settings import Settings

PASSWORD = "correct horse battery"
LORAFORGE = Path(sys.executable).with_name("loraforge")
pytestmark = pytest.mark.slow


class Service:
    """The API (in-process TestClient) and worker processes sharing one set of settings."""

    def __init__(self, root: Path, broker_url: str | None, database_url: str | None) -> None:
        self.root = root
        self.env_values = {
            "LORAFORGE_DATA_DIR": str(root / "state"),
            "LORAFORGE_RESULTS_DIR": str(root / "results"),
            "LORAFORGE_JOB_LEASE_S": "3",
            "LORAFORGE_JOB_HEARTBEAT_S": "0.5",
            "LORAFORGE_REAPER_INTERVAL_S": "1",
            "LORAFORGE_JOB_MAX_ATTEMPTS": "2",
            "LORAFORGE_JOB_RETRY_BACKOFF_S": "0",
        }
        if broker_url:
            self.env_values["LORAFORGE_BROKER_URL"] = broker_url
        if database_url:
            self.env_values["LORAFORGE_DATABASE_URL"] = database_url
        self.settings = Settings(
            data_dir=root / "state",
            results_dir=root / "results",
            broker_url=broker_url,
            database_url=database_url,
            job_lease_s=3,
            job_heartbeat_s=0.5,
            reaper_interval_s=1,
            job_max_attempts=2,
        )
        self.client = TestClient(create_app(self.settings))
        self.workers: list[subprocess.Popen] = []
        with sessionmaker(bind=get_engine(self.settings.resolved_database_url()))() as session:
            for name in ("alice", "bob"):
                users.create_user(session, username=name, password=PASSWORD)
            session.commit()
        self.headers = {name: self._login(name) for name in ("alice", "bob")}

    def _login(self, name: str) -> dict[str, str]:
        token = self.client.post("/login", data={"username": name, "password": PASSWORD}).json()[
            "access_token"
        ]
        return {"Authorization": f"Bearer {token}"}

    def start_worker(self) -> subprocess.Popen:
        log = open(self.root / f"worker-{len(self.workers)}.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [str(LORAFORGE), "worker"],
            env={**os.environ, **self.env_values},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def upload(self, rows: int, user: str = "alice") -> str:
        content = make_texts(rows, seed=rows).to_csv(index=False).encode()
        response = self.client.post(
            "/datasets",
            headers=self.headers[user],
            files={"file": ("train.csv", io.BytesIO(content), "text/csv")},
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def submit(self, model_dir: Path, dataset_id: str, **training) -> str:
        body = {
            "experiment_name": "job",
            "model": {"base_model": str(model_dir), "device": "cpu"},
            "data": {"dataset_id": dataset_id, "eval_split": 0.2, "max_length": 32},
            "lora": {"r": 4, "alpha": 8},
            "training": {
                "batch_size": 8,
                "learning_rate": 5e-3,
                "precision": "fp32",
                "logging_steps": 2,
                **training,
            },
        }
        response = self.client.post("/train", headers=self.headers["alice"], json=body)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued"
        return response.json()["task_id"]

    def task(self, task_id: str, user: str = "alice") -> dict:
        return self.client.get(f"/task/{task_id}", headers=self.headers[user]).json()

    def wait(self, task_id: str, until, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.task(task_id)
            if until(task):
                return task
            time.sleep(0.2)
        logs = "\n".join(p.read_text()[-3000:] for p in sorted(self.root.glob("worker-*.log")))
        raise AssertionError(f"task {task_id} still {task['status']} after {timeout}s\n{logs}")

    def job_row(self, task_id: str) -> state.JobRecord:
        """What only the database knows, such as which worker process holds the job."""
        with sessionmaker(bind=get_engine(self.settings.resolved_database_url()))() as session:
            return state.get(session, task_id)

    def close(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
        self.client.close()


def finished(task: dict) -> bool:
    return task["status"] in ("succeeded", "failed", "cancelled")


@pytest.fixture(params=["embedded", "redis+postgresql"])
def service(request, tmp_path):
    """Embedded: SQLite and the filesystem transport. Cluster: PostgreSQL and Redis."""
    if request.param == "embedded":
        running = Service(tmp_path, None, None)
        yield running
        running.close()
        return
    if not (available(6379, "Redis") and available(5432, "PostgreSQL")):
        pytest.skip("no Redis or PostgreSQL on 127.0.0.1")
    import redis

    broker_url = f"{REDIS_URL}/13"
    redis.Redis.from_url(broker_url).flushdb()
    with fresh_postgres_database() as database_url:
        running = Service(tmp_path, broker_url, database_url)
        yield running
        running.close()


def test_submit_run_succeed_and_use_the_model(service, tiny_model_dir, caplog):
    caplog.set_level(logging.INFO, logger="loraforge")
    caplog.handler.addFilter(TaskIdFilter())
    service.start_worker()
    started = time.monotonic()
    task_id = service.submit(tiny_model_dir, service.upload(120), epochs=2)
    task = service.wait(task_id, finished)
    assert task["status"] == "succeeded", task
    assert task["attempts"] == 1 and task["error"] is None
    progress = task["progress"]
    assert progress["phase"] == "done" and progress["step"] == progress["total_steps"]
    assert len(progress["eval_history"]) == 2 and progress["loss_history"]
    # The job page says whether the model learned anything, as metrics.json does.
    assert set(progress["quality"]) >= {"learned", "problems", "hint", "majority_rate"}
    experiment_id = task["experiment_id"]
    experiment = service.client.get(
        f"/experiments/{experiment_id}", headers=service.headers["alice"]
    )
    assert experiment.status_code == 200 and experiment.json()["status"] == "succeeded"
    assert experiment.json()["learned"] is progress["quality"]["learned"]
    assert str(service.settings.resolved_data_dir()) not in experiment.text  # no server paths
    answer = service.client.post(
        "/predict",
        headers=service.headers["alice"],
        json={"experiment_id": experiment_id, "texts": ["great good"]},
    )
    assert answer.status_code == 200 and answer.json()["data"][0]["label"] in (
        "positive",
        "negative",
    )
    # Bob sees none of it: 404 exactly as for something missing.
    assert service.client.get(f"/task/{task_id}", headers=service.headers["bob"]).status_code == 404
    assert (
        service.client.get(
            f"/experiments/{experiment_id}", headers=service.headers["bob"]
        ).status_code
        == 404
    )
    assert (
        service.client.post(
            "/predict",
            headers=service.headers["bob"],
            json={"experiment_id": experiment_id, "texts": ["x"]},
        ).status_code
        == 404
    )
    assert service.client.get("/tasks", headers=service.headers["bob"]).json()["count"] == 0
    print(f"submit → succeeded in {time.monotonic() - started:.1f} s")

    # One task id follows the job through the API, the database writes and the worker.
    api_lines = [r for r in caplog.records if getattr(r, "task_id", None) == task_id]
    assert any(
        r.name == "loraforge.api.access" and r.getMessage().startswith("POST /train")
        for r in api_lines
    )
    assert any(
        r.name == "loraforge.api.access" and r.getMessage().startswith(f"GET /task/{task_id}")
        for r in api_lines
    )
    worker_lines = []
    for line in (service.root / "worker-0.log").read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("task_id") == task_id:
                worker_lines.append(entry)
    events = [(e["logger"], e["msg"]) for e in worker_lines]
    assert any("claimed by" in msg for _, msg in events)
    assert any(
        e.get("event") == "job.transition" and e.get("status") == "running" for e in worker_lines
    )
    assert any(
        e.get("event") == "job.transition" and e.get("status") == "succeeded" for e in worker_lines
    )
    assert any(logger == "loraforge.training" and "steps over" in msg for logger, msg in events)
    assert all(e["service"] == "worker" for e in worker_lines)


def test_cancel_a_queued_job_at_once(service, tiny_model_dir):
    task_id = service.submit(tiny_model_dir, service.upload(60), epochs=1)  # no worker yet
    response = service.client.post(f"/task/{task_id}/cancel", headers=service.headers["alice"])
    assert response.json()["status"] == "cancelled"
    service.start_worker()
    time.sleep(3)  # the worker receives the message and must refuse it
    assert service.task(task_id)["status"] == "cancelled"


def test_cancel_a_running_job_within_seconds(service, tiny_model_dir):
    service.start_worker()
    task_id = service.submit(tiny_model_dir, service.upload(800), epochs=20)
    service.wait(
        task_id, lambda t: t["status"] == "running" and (t["progress"] or {}).get("step", 0) > 0
    )
    asked = time.monotonic()
    assert (
        service.client.post(f"/task/{task_id}/cancel", headers=service.headers["bob"]).status_code
        == 404
    )
    service.client.post(f"/task/{task_id}/cancel", headers=service.headers["alice"])
    task = service.wait(task_id, finished, timeout=30)
    assert task["status"] == "cancelled"
    took = time.monotonic() - asked
    print(f"cancel of a running job took {took:.1f} s")
    assert took < 10
    results = service.settings.resolved_results_dir()
    assert not any(p.name.startswith(task["experiment_id"]) for p in results.iterdir())


def test_a_killed_worker_loses_no_job(service, tiny_model_dir):
    first = service.start_worker()
    task_id = service.submit(tiny_model_dir, service.upload(600), epochs=6)
    service.wait(
        task_id, lambda t: t["status"] == "running" and (t["progress"] or {}).get("epoch", 0) >= 1.2
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    service.start_worker()
    task = service.wait(task_id, finished)
    assert task["status"] == "succeeded", task
    assert task["attempts"] == 2
    experiment = service.client.get(
        f"/experiments/{task['experiment_id']}", headers=service.headers["alice"]
    ).json()
    assert experiment["metrics"]["train"]["resumed_from_epoch"] >= 1
    assert [round(h["epoch"]) for h in experiment["metrics"]["history"]] == [1, 2, 3, 4, 5, 6]


def test_a_job_that_kills_its_worker_every_time_fails_while_others_keep_moving(
    service, tiny_model_dir
):
    """As the OOM killer would: whichever worker runs the doomed job dies, every time, and
    its supervisor starts a new one. The job ends failed after max_attempts (2 here); the
    jobs queued behind it succeed on the surviving workers."""
    service.start_worker()
    service.start_worker()
    doomed = service.submit(tiny_model_dir, service.upload(600), epochs=20)
    others = [service.submit(tiny_model_dir, service.upload(60 + i), epochs=1) for i in range(2)]
    killed: set[str] = set()
    deadline = time.monotonic() + 180
    while not finished(task := service.task(doomed)):
        assert time.monotonic() < deadline, task
        holder = service.job_row(doomed).worker
        if task["status"] == "running" and holder and holder not in killed:
            pid = int(holder.rsplit(":", 1)[1])
            victim = next(w for w in service.workers if w.pid == pid)
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            killed.add(holder)
            service.start_worker()
        time.sleep(0.2)
    assert task["status"] == "failed", task
    assert task["attempts"] == 2 and len(killed) == 2
    assert "the worker died 2 time(s)" in task["error"]
    for other in others:
        outcome = service.wait(other, finished)
        assert outcome["status"] == "succeeded", outcome["error"]
