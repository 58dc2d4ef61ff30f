"""API and queue speed: time from POST /train to a worker starting the job, and the latency
and throughput of GET /task/{id} under concurrent clients.

Starts `loraforge api` (one uvicorn process) and one `loraforge worker` on a fresh data
directory, with Redis on 127.0.0.1 as the broker (``--broker embedded`` for the
filesystem transport), then:

1. submits ``--jobs`` small jobs one at a time; for each, the delay from the POST being
   answered to the job row's ``started_at`` (set by the worker's claim); each job is
   cancelled as soon as it runs;
2. loads GET /task/{id} from ``--clients`` concurrent keep-alive clients for ``--seconds``
   seconds, once per ``--intervals`` pace: back to back (a saturation test, where by
   Little's law latency = clients / throughput) and polling as a watching UI does.

    .venv/bin/python benchmarks/api_load.py [--clients 50] [--seconds 30] [--jobs 5]
        [--api-workers 1] [--intervals 0,0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
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


async def _keepalive_client(
    host: str, port: int, request: bytes, stop_at: float, interval: float, out: list[float]
) -> int:
    """One client on one keep-alive connection: send, read the whole answer, repeat.

    Raw asyncio streams rather than an HTTP library: on 2 cores the load generator shares
    the CPU with the server, and httpx spends several times the server's own CPU per
    request, which would measure the client instead of the API.
    """
    errors = 0
    # Independent pollers start out of step; started together they would arrive in bursts.
    await asyncio.sleep(random.uniform(0, interval))
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            out.append(time.perf_counter() - began)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            if interval:
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - began)))
    except (OSError, asyncio.IncompleteReadError):
        errors += 1
    finally:
        writer.close()
    return errors


async def hammer(
    url: str, token: str, path: str, clients: int, seconds: float, interval: float
) -> tuple[list[float], int]:
    """``clients`` concurrent clients; each waits ``interval`` s between the starts of its
    requests (0: back to back, a saturation test)."""
    parsed = httpx.URL(url)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    errors = await asyncio.gather(
        *(
            _keepalive_client(parsed.host, parsed.port, request, stop_at, interval, latencies)
            for _ in range(clients)
        )
    )
    return latencies, sum(errors)


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument(
        "--api-workers", type=int, default=1, help="uvicorn processes (loraforge api --workers)"
    )
    parser.add_argument(
        "--intervals",
        default="0,0.2",
        help="comma-separated seconds between one client's requests; 0 is back to back "
        "(saturation), 0.2 is 50 clients each polling 5 times a second",
    )
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
    processes = [
        subprocess.Popen(
            [LORAFORGE, "api", "--port", str(port), "--workers", str(args.api_workers)], **quiet
        )
    ]
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
        loads = {
            interval: asyncio.run(
                hammer(url, token, f"/task/{task_id}", args.clients, args.seconds, interval)
            )
            for interval in (float(i) for i in args.intervals.split(","))
        }
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)

    broker = "Redis" if args.broker != "embedded" else "embedded (filesystem transport)"
    print(
        f"broker: {broker}; database: SQLite; API: {args.api_workers} uvicorn process(es); "
        f"1 worker; {os.cpu_count()} cores shared with the load generator"
    )
    print(
        f"POST /train → worker starts the job: median {statistics.median(delays) * 1000:.0f} ms, "
        f"max {max(delays) * 1000:.0f} ms over {len(delays)} jobs (target < 1000 ms with Redis)"
    )
    print(f"GET /task/{{id}}, 1 client: median {statistics.median(single) * 1000:.1f} ms")
    for interval, (latencies, errors) in loads.items():
        ordered = sorted(latencies)
        pace = "back to back" if interval == 0 else f"each every {interval * 1000:.0f} ms"
        print(
            f"GET /task/{{id}}, {args.clients} clients {pace}, {args.seconds:.0f} s: "
            f"{len(latencies)} requests, {len(latencies) / args.seconds:.0f} req/s, "
            f"p50 {percentile(ordered, 0.50):.1f} ms, p99 {percentile(ordered, 0.99):.1f} ms, "
            f"errors {errors} (target p99 < 50 ms, no errors)"
        )


if __name__ == "__main__":
    main()
