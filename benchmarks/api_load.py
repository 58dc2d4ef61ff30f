"""API and queue speed: time from POST /train to a worker starting the job, and the latency
and throughput of GET /task/{id} under concurrent clients.

Starts `loraforge api` (one uvicorn process) and one `loraforge worker` on a fresh data
directory, with Redis on 127.0.0.1 as the broker (``--broker embedded`` for the
filesystem transport), then:

1. submits ``--jobs`` small jobs one at a time; for each, the delay from the POST being
   answered to the job row's ``started_at`` (set by the worker's claim); each job is
   cancelled as soon as it runs;
2. hammers GET /task/{id} from ``--clients`` concurrent clients for ``--seconds`` seconds.

    .venv/bin/python benchmarks/api_load.py [--clients 50] [--seconds 30] [--jobs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

LORAFORGE = str(Path(sys.executable).with_name("loraforge"))
PASSWORD = "benchmark password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the API did not come up")


def demo_csv(rows: int) -> bytes:
    from loraforge.data.demo import write_demo

    with tempfile.TemporaryDirectory() as tmp:
        files = write_demo(Path(tmp), train_size=rows, eval_size=20)
        return files.train.read_bytes()


async def hammer(
    url: str, headers: dict, task_id: str, clients: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=10
    ) as client:

        async def one_client() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    response = await client.get(f"/task/{task_id}")
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument(
        "--broker", default="redis://127.0.0.1:6379/14", help="a Redis URL, or 'embedded'"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="loraforge-bench-"))
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(root / "state"),
        "LORAFORGE_RESULTS_DIR": str(root / "results"),
    }
    if args.broker != "embedded":
        import redis

        redis.Redis.from_url(args.broker).flushdb()
        env["LORAFORGE_BROKER_URL"] = args.broker
    subprocess.run(
        [LORAFORGE, "users", "create", "bench", "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    quiet = {
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "env": env,
        "start_new_session": True,
    }
    processes = [subprocess.Popen([LORAFORGE, "api", "--port", str(port)], **quiet)]
    processes.append(subprocess.Popen([LORAFORGE, "worker"], **quiet))
    try:
        wait_healthy(url)
        token = httpx.post(f"{url}/login", data={"username": "bench", "password": PASSWORD}).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        dataset = httpx.post(
            f"{url}/datasets",
            headers=headers,
            files={"file": ("demo.csv", io.BytesIO(demo_csv(200)), "text/csv")},
        ).json()["id"]
        body = {
            "experiment_name": "bench",
            "data": {"dataset_id": dataset, "eval_split": 0.2},
            "training": {"epochs": 50},
        }
        delays, task_id = [], ""
        for attempt in range(args.jobs + 1):  # the first warms the worker up (imports, model load)
            sent = time.time()
            response = httpx.post(f"{url}/train", headers=headers, json=body)
            task_id = response.json()["task_id"]
            while True:
                task = httpx.get(f"{url}/task/{task_id}", headers=headers).json()
                if task["started_at"]:
                    break
                time.sleep(0.02)
            started = datetime.fromisoformat(task["started_at"]).timestamp()
            if attempt > 0:
                delays.append(started - sent)
            httpx.post(f"{url}/task/{task_id}/cancel", headers=headers)
            while (
                httpx.get(f"{url}/task/{task_id}", headers=headers).json()["status"] != "cancelled"
            ):
                time.sleep(0.1)

        single = []
        with httpx.Client(base_url=url, headers=headers) as client:
            for _ in range(200):
                began = time.perf_counter()
                client.get(f"/task/{task_id}")
                single.append(time.perf_counter() - began)
        latencies, errors = asyncio.run(hammer(url, headers, task_id, args.clients, args.seconds))
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)

    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    broker = "Redis" if args.broker != "embedded" else "embedded (filesystem transport)"
    print(f"broker: {broker}; database: SQLite; API: 1 uvicorn process; 1 worker")
    print(
        f"POST /train → worker starts the job: median {statistics.median(delays) * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms over {len(delays)} jobs (target < 1000 ms with Redis)"
    )
    print(f"GET /task/{{id}}, 1 client: median {statistics.median(single) * 1000:.1f} ms")
    print(
        f"GET /task/{{id}}, {args.clients} clients, {args.seconds:.0f} s: {len(latencies)} requests, "
        f"{len(latencies) / args.seconds:.0f} req/s, p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, "
        f"errors {errors} (target p99 < 50 ms, no errors)"
    )


if __name__ == "__main__":
    main()
