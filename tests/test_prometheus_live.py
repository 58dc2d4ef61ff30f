"""A real Prometheus scraping a live API, worker and prediction server.

Prometheus (Debian's package) starts on 127.0.0.1 with a generated scrape config and the
project's alert rules; a tiny job runs through the API and a worker; the prediction server
answers a few requests. Then, over Prometheus' HTTP API: task_success_total went from 0
to 1, the queue length and durations are there, every target is up, and every panel query
of the Grafana dashboard returns a series. The panels are also drawn into a PNG
(deploy/dashboard_snapshot.py); LORAFORGE_DASHBOARD_PNG=path keeps a copy (the README's
picture was made so).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import make_texts
from dashboard_queries import panel_queries
from services import free_port, required
from sqlalchemy.orm import sessionmaker

from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LORAFORGE = Path(sys.executable).with_name("loraforge")
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "loraforge.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PASSWORD = "correct horse battery"
pytestmark = pytest.mark.slow


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        message = "prometheus (Debian's package) is not installed"
        if required():
            pytest.fail(f"{message}; .ci/run installs it")
        pytest.skip(message)
    return found


class Processes:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env, self.running = root, env, []

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("w")
        process = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, process))
        return process

    def wait_http(self, name: str, url: str, ok=lambda r: r.status_code < 500, timeout=90):
        process = dict(self.running)[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if ok(httpx.get(url, timeout=2)):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"{name} ({url}) not ready:\n{self.logs(name)}")

    def logs(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()[-4000:]

    def stop(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def query(prometheus: str, expr: str) -> list[dict]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def query_range(prometheus: str, expr: str, start: float) -> list[dict]:
    params = {"query": expr, "start": start, "end": time.time(), "step": 1}
    body = httpx.get(f"{prometheus}/api/v1/query_range", params=params, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def test_prometheus_sees_the_job_the_serving_and_every_dashboard_panel(tmp_path, tiny_model_dir):
    binary = prometheus_binary()
    api_port, worker_port, serve_port, prom_port = (free_port() for _ in range(4))
    env = {
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "LORAFORGE_RESULTS_DIR": str(tmp_path / "results"),
        "LORAFORGE_JOB_HEARTBEAT_S": "0.5",
        "LORAFORGE_JOB_LEASE_S": "5",
        "LORAFORGE_REAPER_INTERVAL_S": "1",
    }
    settings = Settings(data_dir=tmp_path / "state", results_dir=tmp_path / "results")
    with sessionmaker(bind=get_engine(settings.resolved_database_url()))() as session:
        users.create_user(session, username="alice", password=PASSWORD)
        session.commit()

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in (
                ("loraforge-api", api_port),
                ("loraforge-worker", worker_port),
                ("loraforge-serve", serve_port),
            )
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    processes = Processes(tmp_path, env)
    prometheus = f"http://127.0.0.1:{prom_port}"
    api = f"http://127.0.0.1:{api_port}"
    try:
        processes.start("api", [str(LORAFORGE), "api", "--port", str(api_port)])
        processes.start("worker", [str(LORAFORGE), "worker", "--metrics-port", str(worker_port)])
        processes.start(
            "prometheus",
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
        )
        processes.wait_http("api", f"{api}/health")
        processes.wait_http("worker", f"http://127.0.0.1:{worker_port}/metrics")
        processes.wait_http("prometheus", f"{prometheus}/-/ready", lambda r: r.status_code == 200)
        began = time.time()
        # Prometheus has seen the API with no job done yet.
        deadline = time.monotonic() + 30
        while not query(prometheus, 'up{job="loraforge-api"} == 1'):
            assert time.monotonic() < deadline, processes.logs("prometheus")
            time.sleep(0.5)

        with httpx.Client(base_url=api, timeout=30) as client:
            token = client.post("/login", data={"username": "alice", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            content = make_texts(160, seed=3).to_csv(index=False).encode()
            upload = client.post(
                "/datasets",
                headers=headers,
                files={"file": ("train.csv", io.BytesIO(content), "text/csv")},
            )
            assert upload.status_code == 201, upload.text
            job = client.post(
                "/train",
                headers=headers,
                json={
                    "experiment_name": "metrics",
                    "model": {"base_model": str(tiny_model_dir), "device": "cpu"},
                    "data": {
                        "dataset_id": upload.json()["id"],
                        "eval_split": 0.2,
                        "max_length": 32,
                    },
                    "lora": {"r": 4, "alpha": 8},
                    # Long enough for the live throughput to reach a scrape.
                    "training": {"epochs": 12, "batch_size": 4, "precision": "fp32"},
                },
            )
            assert job.status_code == 202, job.text
            task_id = job.json()["task_id"]
            deadline = time.monotonic() + 240
            while (task := client.get(f"/task/{task_id}", headers=headers).json())[
                "status"
            ] not in ("succeeded", "failed", "cancelled"):
                assert time.monotonic() < deadline, processes.logs("worker")
                time.sleep(0.5)
            assert task["status"] == "succeeded", (task, processes.logs("worker"))

        processes.start(
            "serve",
            [
                str(LORAFORGE),
                "serve",
                "--experiment",
                task["experiment_id"],
                "--port",
                str(serve_port),
            ],
        )
        processes.wait_http(
            "serve", f"http://127.0.0.1:{serve_port}/health", lambda r: r.status_code == 200
        )
        for i in range(20):
            answer = httpx.post(
                f"http://127.0.0.1:{serve_port}/predict", json={"texts": [f"good flight {i}"]}
            )
            assert answer.status_code == 200, answer.text
        time.sleep(4)  # a few scrapes of everything

        success = query_range(prometheus, "max(task_success_total)", began)
        values = [float(v) for _, v in success[0]["values"]]
        assert values[0] == 0 and values[-1] == 1, values
        assert query(prometheus, "task_queue_length"), "no queue length"
        assert float(query(prometheus, "max(task_duration_seconds_count)")[0]["value"][1]) == 1
        assert query_range(prometheus, "max(loraforge_training_samples_per_second)", began)
        for job_name in ("loraforge-api", "loraforge-worker", "loraforge-serve"):
            assert query(prometheus, f'up{{job="{job_name}"}} == 1'), job_name
        # The alert rules loaded into a real Prometheus, and none is in error.
        rules = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
        loaded = [rule for group in rules for rule in group["rules"]]
        assert loaded and all(rule.get("health") != "err" for rule in loaded), loaded

        # GPU memory is reported only by a job that trains on a GPU; none does here.
        no_gpu = not __import__("torch").cuda.is_available()
        empty = [
            (title, expr)
            for title, expr in panel_queries(DASHBOARD)
            if not query_range(prometheus, expr, began)
            and not (no_gpu and "loraforge_gpu_memory_bytes" in expr)
        ]
        assert not empty, f"dashboard queries with no series: {empty}"

        sys.path.insert(0, str(ROOT / "deploy"))
        from dashboard_snapshot import render

        picture = render(prometheus, tmp_path / "dashboard.png", minutes=(time.time() - began) / 60)
        assert picture.stat().st_size > 10_000
        if keep := os.environ.get("LORAFORGE_DASHBOARD_PNG"):
            shutil.copy(picture, keep)
    finally:
        processes.stop()
