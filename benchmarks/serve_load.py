"""Serving speed and memory: `loraforge serve` against the naive server, in one run.

Starts each server as a user would (its own process, on this machine's stores) and
drives it with concurrent keep-alive clients (closed loop: each sends its next request
when the last is answered), one demo tweet per request:

  (a) naive: FastAPI + a transformers text-classification pipeline per request, the
      adapter merged, fp32 (benchmarks/naive_server.py);
  (b) `loraforge serve --precision fp32`;
  (b2) `loraforge serve` with its defaults (bf16 where the CPU runs it natively, else fp32);
  (c) `loraforge serve --quantize int8`;
  (d) `loraforge serve` with ten adapters on one base, traffic spread across them (ten
      copies of the experiment, registered as ten experiments in a scratch data folder);

then (e) an open-loop overload on (b2): requests arrive at 4x the rate (b2) sustained at
32 clients, whatever the answers; the server must answer only 200 or 429, and the p99 of
the 200s must stay within 2x the unloaded p99.

Prints throughput, p50/p99 latency, errors, peak RSS of each server, int8 vs fp32
accuracy (as `GET /models` reports it), and the CPU's vector flags. The load generator
(aiohttp: a fifth of the CPU httpx needs per request, measured) runs on the same cores:
its CPU is the servers' loss, the same for all of them.

    .venv/bin/python benchmarks/serve_load.py [--experiment ID|latest] [--clients 1,8,32,128]
        [--seconds 8] [--only a,b,c,d,e] [serve options: --max-batch-tokens N --max-wait-ms N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LORAFORGE = str(Path(sys.executable).with_name("loraforge"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            line = next((x for x in handle if x.startswith("flags")), "")
    except OSError:
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
    return " ".join(f for f in wanted if f in line.split()) or "none of avx2/avx512"


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> None:
        self.log = Path(tempfile.mkstemp(prefix=f"serve-{self.name}-", suffix=".log")[1])
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} stopped:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} did not become healthy:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> float | None:
        if self.process is None:
            return None
        rss = peak_rss_mb(self.process.pid)
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        return rss


@dataclass
class Load:
    clients: int
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    server_ms: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Answered (200) requests a second: a refusal is not throughput."""
        return self.statuses.get(200, 0) / self.seconds if self.seconds else 0.0

    def pct(self, q: float, values: list[float] | None = None) -> float:
        values = self.latencies_ms if values is None else values
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def errors(self) -> int:
        """Anything but an answer or a 429 (a refusal the client is told to retry)."""
        return sum(n for status, n in self.statuses.items() if status not in (200, 429))

    @property
    def refused(self) -> int:
        return self.statuses.get(429, 0)


async def closed_loop(
    url: str, texts: list[str], clients: int, seconds: float, warmup: float, models: list[str]
) -> Load:
    import aiohttp

    result = Load(clients)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        start = time.perf_counter()
        measure_from, stop_at = start + warmup, start + warmup + seconds

        async def client(seed: int) -> None:
            rng = random.Random(seed)
            while (now := time.perf_counter()) < stop_at:
                body = {"texts": [rng.choice(texts)]}
                if models:
                    body["model"] = rng.choice(models)
                try:
                    async with http.post("/predict", json=body) as answer:
                        await answer.read()
                        status = answer.status
                        retry_after = answer.headers.get("Retry-After")
                except aiohttp.ClientError:
                    status, retry_after = -1, None
                done = time.perf_counter()
                if now >= measure_from and done <= stop_at:
                    result.requests += 1
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if status == 200:
                        result.latencies_ms.append((done - now) * 1000)
                if status == 429 and retry_after:
                    # As the server asks (and as a well-behaved client does); retrying at
                    # once would only spend the server's CPU on refusals.
                    await asyncio.sleep(float(retry_after))

        await asyncio.gather(*(client(i) for i in range(clients)))
    result.seconds = seconds
    return result


async def open_loop(url: str, texts: list[str], rate: float, seconds: float) -> Load:
    """Requests at a fixed rate, each on its own, whatever the answers (overload)."""
    import aiohttp

    result = Load(clients=0)
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=1024)
    async with aiohttp.ClientSession(url, connector=connector) as http:

        async def one(text: str) -> None:
            began = time.perf_counter()
            try:
                async with http.post("/predict", json={"texts": [text]}) as answer:
                    payload = await answer.read()
                    status = answer.status
            except aiohttp.ClientError:
                status = -1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.requests += 1
            if status == 200:
                result.latencies_ms.append((time.perf_counter() - began) * 1000)
                # The server's own figure (arrival to answer): what the client adds on
                # top is connecting and its own event loop, on the same 2 cores.
                result.server_ms.append(json.loads(payload)["data"][0]["latency_ms"])

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(rng.choice(texts))))
        await asyncio.gather(*tasks)
    result.seconds = seconds
    return result


def demo_texts(model_dir: Path) -> list[str]:
    from loraforge.serving.evaluation import eval_rows

    rows = eval_rows(model_dir)
    if rows is None:
        raise SystemExit("the experiment's eval data is gone: train with make demo first")
    return rows.texts


def ten_copies(settings, experiment_id: str, scratch: Path, count: int) -> tuple[dict, list[str]]:
    """A scratch data folder holding ``count`` experiments, each a copy of this one."""
    from loraforge.tracking import experiments

    record = experiments.get(settings.resolved_database_url(), experiment_id)
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(scratch / "state"),
        "LORAFORGE_RESULTS_DIR": str(scratch / "results"),
    }
    url = f"sqlite:///{scratch / 'state' / 'loraforge.db'}"
    (scratch / "state").mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(count):
        new_id = f"copy{i}-{experiment_id}"
        target = scratch / "results" / new_id
        shutil.copytree(Path(record.results_dir), target)
        values = {**asdict(record), "id": new_id, "results_dir": str(target), "owner_id": None}
        status = values.pop("status")
        values.pop("created_at")
        experiments.create(url, **values)
        experiments.update(url, new_id, status=status)
        ids.append(new_id)
    return env, ids


def row(label: str, load: Load, rss: float | None, base: Load | None) -> str:
    ratio = f"{load.throughput / base.throughput:.2f}x" if base and base.throughput else "-"
    rss_words = f"{rss:,.0f}" if rss else "-"
    return (
        f"| {label} | {load.clients} | {load.throughput:,.1f} | {ratio} | {load.pct(0.5):,.1f} | "
        f"{load.pct(0.99):,.1f} | {load.refused} | {load.errors} | {rss_words} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="latest")
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--only", default="a,b,b2,c,d,e")
    parser.add_argument("--adapters", type=int, default=10)
    parser.add_argument("--max-batch-tokens", type=int, default=None)
    parser.add_argument("--max-wait-ms", type=float, default=None)
    parser.add_argument("--max-queue", type=int, default=None)
    args = parser.parse_args()

    from loraforge.inference.predictor import final_model_dir
    from loraforge.settings import get_settings
    from loraforge.tracking import experiments

    settings = get_settings()
    record = experiments.get(settings.resolved_database_url(), args.experiment)
    model_dir = final_model_dir(Path(record.results_dir))
    texts = demo_texts(model_dir)
    counts = [int(c) for c in args.clients.split(",")]
    only = set(args.only.split(","))
    tuning = []
    for flag, value in (
        ("--max-batch-tokens", args.max_batch_tokens),
        ("--max-wait-ms", args.max_wait_ms),
        ("--max-queue", args.max_queue),
    ):
        if value is not None:
            tuning += [flag, str(value)]
    print(
        f"experiment {record.id}; {len(texts)} eval tweets; CPU flags: {cpu_flags()}; "
        f"{os.cpu_count()} cores; serve options: {' '.join(tuning) or 'defaults'}"
    )
    print()
    print(
        "| server | clients | answered/s | vs naive | p50 ms | p99 ms | 429 | errors "
        "| peak RSS MB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    env = dict(os.environ)
    results: dict[str, dict[int, Load]] = {}
    extras: dict[str, object] = {}

    def run(key: str, label: str, server: Server, models: list[str] | None = None) -> None:
        server.start()
        results[key] = {}
        try:
            if key == "c":
                extras["accuracy"] = httpx.get(f"{server.url}/models").json()["data"][0]["accuracy"]
            for clients in counts:
                load = asyncio.run(
                    closed_loop(server.url, texts, clients, args.seconds, args.warmup, models or [])
                )
                results[key][clients] = load
            if key == "b2" and "e" in only and 32 in results["b2"]:
                rate = 4 * results["b2"][32].throughput
                extras["overload"] = (
                    rate,
                    asyncio.run(open_loop(server.url, texts, rate, args.seconds)),
                )
        finally:
            rss = server.stop()
            extras.setdefault("rss", {})[key] = rss
        for clients in counts:
            base = results.get("a", {}).get(clients)
            print(row(label, results[key][clients], rss, base), flush=True)

    serve = [LORAFORGE, "serve", "--experiment", record.id, *tuning]
    if "a" in only:
        port = free_port()
        run(
            "a",
            "(a) naive",
            Server(
                "naive",
                [
                    sys.executable,
                    str(HERE / "naive_server.py"),
                    str(model_dir),
                    "--port",
                    str(port),
                ],
                env,
                port,
            ),
        )
    if "b" in only:
        port = free_port()
        command = [*serve, "--precision", "fp32", "--port", str(port)]
        run("b", "(b) serve fp32", Server("fp32", command, env, port))
    if "b2" in only:
        port = free_port()
        run("b2", "(b2) serve defaults", Server("auto", [*serve, "--port", str(port)], env, port))
    if "c" in only:
        port = free_port()
        run(
            "c",
            "(c) serve int8",
            Server("int8", [*serve, "--quantize", "int8", "--port", str(port)], env, port),
        )
    if "d" in only:
        with tempfile.TemporaryDirectory(prefix="serve-load-") as scratch:
            scratch_env, ids = ten_copies(settings, record.id, Path(scratch), args.adapters)
            port = free_port()
            command = [
                LORAFORGE,
                "serve",
                *[x for i in ids for x in ("--experiment", i)],
                *tuning,
                "--port",
                str(port),
            ]
            run(
                "d", f"(d) {args.adapters} adapters", Server("ten", command, scratch_env, port), ids
            )

    print()
    if "accuracy" in extras:
        print(f"int8 vs fp32 accuracy on the eval set: {json.dumps(extras['accuracy'])}")
    if "overload" in extras:
        rate, load = extras["overload"]
        unloaded = results["b2"][counts[0]].pct(0.99)
        sustained = results["b2"][32].pct(0.99)
        print(
            f"overload on (b2): {rate:,.0f} requests/s offered (4x its 32-client rate) for "
            f"{args.seconds:g} s: statuses {dict(sorted(load.statuses.items()))}; answered "
            f"{load.statuses.get(200, 0) / args.seconds:,.1f}/s, p50 {load.pct(0.5):,.1f} ms, "
            f"p99 {load.pct(0.99):,.1f} ms: {load.pct(0.99) / unloaded:.1f}x the p99 of "
            f"{counts[0]} client ({unloaded:,.1f} ms), {load.pct(0.99) / sustained:.1f}x the "
            f"p99 at the sustainable rate (32 clients, {sustained:,.1f} ms); the server's "
            f"own latency_ms: p50 {load.pct(0.5, load.server_ms):,.1f}, "
            f"p99 {load.pct(0.99, load.server_ms):,.1f} ms"
        )
    a, b, b2, c, d = (results.get(k, {}).get(32) for k in ("a", "b", "b2", "c", "d"))
    if a and b:
        print(
            f"(b) vs (a) at 32 clients: {b.throughput / a.throughput:.2f}x throughput, "
            f"p99 {b.pct(0.99):,.1f} vs {a.pct(0.99):,.1f} ms (target >= 4x, lower p99)"
        )
    if b and c:
        print(f"(c) vs (b) at 32 clients: {c.throughput / b.throughput:.2f}x (target >= 1.5x)")
    if a and b2:
        print(
            f"(b2) vs (a) at 32 clients: {b2.throughput / a.throughput:.2f}x throughput, "
            f"p99 {b2.pct(0.99):,.1f} vs {a.pct(0.99):,.1f} ms"
        )
    if b2 and d:
        rss = extras.get("rss", {})
        memory = f"{rss['d'] / rss['b2']:.2f}x" if rss.get("d") and rss.get("b2") else "-"
        print(
            f"(d) vs (b2) at 32 clients: {d.throughput / b2.throughput:.2f}x throughput "
            f"(target >= 0.7x), {memory} peak RSS (target <= 1.3x)"
        )


if __name__ == "__main__":
    main()
