"""The operations metrics: the seed's job series from the jobs table (every replica agrees),
the machine gauges, several API processes summed (multiprocess mode), the worker's own
target, and the exposition checked by `promtool check metrics`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from services import free_port, required
from sqlalchemy.orm import sessionmaker

from loraforge.api.app import create_app
from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.db.models import Job
from loraforge.settings import Settings

LORAFORGE = Path(sys.executable).with_name("loraforge")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, for every sample of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _job(owner: int, number: int, status: str, now: datetime, **values) -> Job:
    return Job(
        id=f"job-{number}",
        owner_id=owner,
        status=status,
        config={},
        dataset_version="v",
        experiment_id=f"exp-{number}",
        attempts=1,
        max_attempts=2,
        created_at=now - timedelta(hours=2),
        updated_at=now,
        **values,
    )


@pytest.fixture
def api_with_jobs(tmp_path):
    settings = Settings(data_dir=tmp_path / "state", results_dir=tmp_path / "results")
    client = TestClient(create_app(settings))
    # Now, at the test, not at collection: the staleness below is measured from it.
    NOW = datetime.now(UTC)
    with sessionmaker(bind=get_engine(settings.resolved_database_url()))() as session:
        owner = users.create_user(session, username="alice", password="correct horse battery")
        session.flush()
        rows = [
            _job(
                owner.id,
                1,
                "succeeded",
                NOW,
                started_at=NOW - timedelta(seconds=100),
                finished_at=NOW,
            ),
            _job(
                owner.id,
                2,
                "succeeded",
                NOW,
                started_at=NOW - timedelta(seconds=700),
                finished_at=NOW,
            ),
            _job(
                owner.id, 3, "failed", NOW, started_at=NOW - timedelta(seconds=40), finished_at=NOW
            ),
            _job(owner.id, 4, "queued", NOW),
            _job(owner.id, 5, "queued", NOW),
            _job(owner.id, 6, "cancelled", NOW),
            _job(
                owner.id,
                7,
                "running",
                NOW,
                started_at=NOW - timedelta(minutes=30),
                worker="host:1",
                progress={
                    "step": 10,
                    "samples_per_second": 41.5,
                    "tokens_per_second": 1234.0,
                    "updated_at": (NOW - timedelta(seconds=600)).isoformat().replace("+00:00", "Z"),
                },
            ),
        ]
        session.add_all(rows)
        session.commit()
    yield client
    client.close()


def test_the_seed_job_series_come_from_the_jobs_table(api_with_jobs):
    answer = api_with_jobs.get("/metrics")
    assert answer.status_code == 200
    got = samples(answer.text)
    assert got[("task_success_total", ())] == 2
    assert got[("task_failure_total", ())] == 1
    assert got[("task_queue_length", ())] == 2
    assert got[("loraforge_jobs", (("status", "running"),))] == 1
    assert got[("loraforge_jobs", (("status", "cancelled"),))] == 1
    # Durations of the three ended jobs: 40 s, 100 s, 700 s.
    assert got[("task_duration_seconds_count", ())] == 3
    assert got[("task_duration_seconds_sum", ())] == pytest.approx(840, abs=1)
    assert got[("task_duration_seconds_bucket", (("le", "60.0"),))] == 1
    assert got[("task_duration_seconds_bucket", (("le", "120.0"),))] == 2
    assert got[("task_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    # The running job last reported progress ten minutes ago.
    assert got[("loraforge_job_stale_seconds", ())] == pytest.approx(600, abs=30)
    assert got[("loraforge_training_samples_per_second", (("job_id", "job-7"),))] == 41.5
    assert got[("loraforge_training_tokens_per_second", (("job_id", "job-7"),))] == 1234.0
    assert 0 <= got[("system_cpu_percent", ())] <= 100 * os.cpu_count()
    assert got[("system_memory_usage_gigabytes", ())] > 0
    # The HTTP counters are still there, labelled by route template.
    api_with_jobs.get("/health")
    again = samples(api_with_jobs.get("/metrics").text)
    health = (
        "loraforge_http_requests_total",
        (("method", "GET"), ("route", "/health"), ("status", "200")),
    )
    assert again[health] >= 1


def promtool() -> str | None:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool (Debian's prometheus package) is not installed"
        if required():
            pytest.fail(f"{message}; .ci/run installs it")
        pytest.skip(message)
    return found


def assert_promtool_accepts(body: str) -> None:
    checked = subprocess.run(
        [promtool(), "check", "metrics"], input=body, capture_output=True, text=True
    )
    # promtool exits 1 when the exposition does not parse and 3 on lint findings. The one
    # finding allowed is the seed's own name, kept so that its dashboard works unchanged
    # (system_memory_usage_bytes beside it is the base-unit form).
    findings = [line for line in (checked.stdout + checked.stderr).splitlines() if line]
    allowed = ['system_memory_usage_gigabytes use base unit "bytes" instead of "gigabytes"']
    assert checked.returncode in (0, 3), checked.stdout + checked.stderr
    assert findings == allowed or (checked.returncode == 0 and not findings), findings


def test_the_api_and_serve_expositions_pass_promtool_check_metrics(api_with_jobs):
    from loraforge.serving.metrics import ServeMetrics

    assert_promtool_accepts(api_with_jobs.get("/metrics").text)
    serving = ServeMetrics()
    serving.requests.labels("m:1", "200").inc()
    serving.request_duration.labels("m:1").observe(0.02)
    serving.observe_batch(4, 60, 0.01)
    assert_promtool_accepts(serving.exposition()[0].decode())


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} stopped:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()[-3000:]}")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(LORAFORGE), *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_two_api_processes_report_the_sum_of_their_requests(tmp_path):
    env = {"LORAFORGE_DATA_DIR": str(tmp_path / "state")}
    port = free_port()
    api = _start(["api", "--port", str(port), "--workers", "2"], env, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/health", api, tmp_path / "api.log")
        # New connections each time, so the kernel spreads them over both processes.
        for _ in range(40):
            assert httpx.get(f"{url}/health").status_code == 200
        key = (
            "loraforge_http_requests_total",
            (("method", "GET"), ("route", "/health"), ("status", "200")),
        )
        totals = {samples(httpx.get(f"{url}/metrics").text).get(key) for _ in range(6)}
        # Whichever process answers the scrape, it reports all 40 (and the readiness polls).
        assert len(totals) == 1, totals
        assert totals.pop() >= 40
    finally:
        _stop(api)
    assert not list(Path("/tmp").glob(f"loraforge-metrics-*/*{api.pid}*"))


@pytest.mark.slow
def test_a_worker_serves_its_own_metrics_and_refuses_a_taken_port(tmp_path):
    env = {"LORAFORGE_DATA_DIR": str(tmp_path / "state")}
    port = free_port()
    worker = _start(["worker", "--metrics-port", str(port)], env, tmp_path / "worker.log")
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", worker, tmp_path / "worker.log")
        got = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        assert got[("loraforge_worker_jobs_running", ())] == 0
        assert ("system_cpu_percent", ()) in got and ("system_memory_usage_gigabytes", ()) in got
        assert_promtool_accepts(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        # A second worker on the same port: refused in our words, exit 2.
        taken = subprocess.run(
            [str(LORAFORGE), "worker", "--metrics-port", str(port)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert taken.returncode == 2, taken.stdout + taken.stderr
        assert "cannot serve metrics" in taken.stderr + taken.stdout
        assert "Traceback" not in taken.stderr + taken.stdout
    finally:
        _stop(worker)
