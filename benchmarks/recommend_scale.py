"""How far brute-force cosine holds for `POST /models/recommend`.

A query reads every candidate version's stored embedding (JSON in the database), turns
them into one matrix, and ranks them by cosine in numpy. For 1,000 / 10,000 / 100,000
stored 384-dimensional vectors this prints the time of the cosine + top-5 (best of 5)
and of the larger cost, decoding and stacking the stored JSON (CPU time of one thread,
measured on up to 2,000 rows and scaled), with the CPU's vector flags.

    .venv/bin/python benchmarks/recommend_scale.py [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from loraforge.registry import embeddings, recommend

DIMENSIONS = 384  # the bundled MiniLM's sentence embedding


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            line = next((x for x in handle if x.startswith("flags")), "")
    except OSError:
        return platform.processor() or "unknown"
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
    return " ".join(f for f in wanted if f in line.split()) or "none of avx2/avx512"


def measure(size: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((size, DIMENSIONS), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    query = matrix[0]
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        scores = matrix @ query
        top = np.argpartition(-scores, 5)[:5]
        runs.append(time.perf_counter() - start)
    if 0 not in top:
        raise SystemExit("the query's own vector was not in its top 5: the benchmark is wrong")
    # As the database hands them over: JSON text, decoded, checked and stacked.
    sample = matrix[: min(size, 2_000)]
    as_json = [json.dumps(embeddings.as_stored(row)) for row in sample]
    start = time.thread_time()
    recommend._matrix([recommend._as_vector(json.loads(v)) for v in as_json])
    convert = (time.thread_time() - start) * size / len(as_json)
    return min(runs), convert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    print(f"CPU flags: {cpu_flags()}")
    print(f"{'vectors':>8}  {'cosine + top-5':>15}  {'stored JSON to matrix':>22}")
    for size in args.sizes:
        cosine, convert = measure(size)
        print(f"{size:>8,}  {cosine * 1000:12.2f} ms  {convert * 1000:19.1f} ms")


if __name__ == "__main__":
    main()
