"""The models a server serves: what each reference points to, loading, following an alias.

A reference is what a user asked for: ``NAME@production`` (or ``NAME`` alone),
``NAME@staging``, ``NAME:3``, an experiment id, or ``latest``. Aliases are followed: a
server started with ``NAME@production`` checks the registry every few seconds and, when
the alias has moved, loads the new version in the background (beside the old one, on
the same base) and then swaps it in with one assignment. Requests read a model's
``current`` once, so each is answered wholly by the old or wholly by the new version;
the old adapter is removed once no queued text refers to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraforge.errors import InvalidInput, InvalidRequest, LoraforgeError, NotFound
from loraforge.serving import evaluation
from loraforge.serving.adapters import read_adapter
from loraforge.serving.batcher import DEFAULT_BATCH_TOKENS, Batcher
from loraforge.serving.engine import Engine, Loaded, Quantize
from loraforge.settings import Settings

log = logging.getLogger("loraforge.serving")

FOLLOW_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Target:
    """What a reference points to now."""

    identity: str  # "tweet-sentiment:3", or the experiment id
    experiment_id: str
    name: str | None
    version: int | None
    stage: str | None
    model_dir: Path


def resolve(settings: Settings, ref: str) -> Target:
    """Where ``ref`` points now (a database read; no model is loaded)."""
    from loraforge.inference.predictor import final_model_dir
    from loraforge.registry import service as registry
    from loraforge.tracking import experiments

    db_url = settings.resolved_database_url()
    if not registry.is_reference(ref):
        try:
            return _experiment_target(experiments.get(db_url, ref), final_model_dir)
        except NotFound:
            if ref == "latest":
                raise
        # Not an experiment: a bare NAME is NAME@production.
    try:
        info = registry.resolve_reference(settings, ref)
    except NotFound as error:
        if registry.is_reference(ref):
            raise
        raise NotFound(
            f"{ref!r} is neither an experiment nor a registered model",
            hint="Give NAME@production, NAME@staging, NAME:VERSION, an experiment id or latest.",
        ) from error
    if info.model_dir is None:
        raise NotFound(f"{info.reference} has no model files")
    return Target(
        identity=info.reference,
        experiment_id=info.experiment_id,
        name=info.name,
        version=info.version,
        stage=info.stage,
        model_dir=info.model_dir,
    )


def _experiment_target(record: Any, final_model_dir: Any) -> Target:
    if record.status != "succeeded":
        raise InvalidRequest(
            f"experiment {record.id} has status {record.status}; only a succeeded one has a model"
        )
    return Target(
        identity=record.id,
        experiment_id=record.id,
        name=None,
        version=None,
        stage=None,
        model_dir=final_model_dir(Path(record.results_dir)),
    )


@dataclass(frozen=True)
class Current:
    """A loaded model: swapped as a whole, read once per request."""

    target: Target
    engine: Engine
    batcher: Batcher
    adapter: str
    loaded: Loaded
    loaded_at: float
    # int8 only: accuracy on the model's eval data, int8 beside fp32 (serving/evaluation.py)
    accuracy: dict[str, Any] | None = None


@dataclass
class Served:
    ref: str
    # Set once resolved: a registry alias (NAME@production, or NAME alone) is followed;
    # NAME:3 and experiments are fixed.
    follows: bool = False
    current: Current | None = None
    error: str | None = None  # why it is not loaded (or why the last swap failed)
    loading: bool = True
    swaps: int = 0
    swap_error: str | None = None
    failed_identity: str | None = None  # what failed to load, not to retry unchanged

    @property
    def ready(self) -> bool:
        return self.current is not None


@dataclass
class ServerOptions:
    device: str = "cpu"
    quantize: Quantize = "none"
    precision: str = "auto"  # auto: bf16 where the hardware runs it natively, else fp32
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS
    max_wait_ms: float = 5.0
    max_queue: int = 128
    follow_interval_s: float = FOLLOW_INTERVAL_S


@dataclass
class _Base:
    engine: Engine
    batcher: Batcher


class ModelSet:
    """Every served model; one engine (and one batcher) per base model, one inference
    thread for all of them (two would only contend for the same cores)."""

    def __init__(self, settings: Settings, refs: list[str], options: ServerOptions) -> None:
        self.settings = settings
        self.options = options
        self.served = [Served(ref=ref) for ref in dict.fromkeys(refs)]
        self._bases: dict[str, _Base] = {}
        self._names = (f"m{i}" for i in itertools.count())
        self._inference = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="model-load")
        self._bases_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        # Adapter name → requests holding it (from reading `current` to their answer),
        # so a swapped-out adapter outlives every request that started with it.
        self._holders: dict[str, int] = {}
        self.on_load: list[Any] = []  # callbacks(served, seconds), for metrics
        self.batch_observers: list[Any] = []  # callbacks(texts, tokens, seconds)
        # One tokenizer thread: a fast tokenizer's truncation setting is shared state, and
        # tokenizing off the event loop keeps it answering while a long batch is encoded.
        self.tokenizing = ThreadPoolExecutor(1, thread_name_prefix="tokenize")

    # --- start and stop -------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks.append(self._loop.create_task(self._load_all(), name="load-models"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for base in self._bases.values():
            await base.batcher.stop()
        self._loader.shutdown(wait=False, cancel_futures=True)
        self.tokenizing.shutdown(wait=False, cancel_futures=True)
        self._inference.shutdown(wait=False, cancel_futures=True)

    async def _load_all(self) -> None:
        loop = asyncio.get_running_loop()
        for served in self.served:
            target: Target | None = None
            try:
                target = await loop.run_in_executor(
                    self._loader, resolve, self.settings, served.ref
                )
                served.follows = target.name is not None and ":" not in served.ref
                served.current = await self._load(target)
                served.error = None
                self._loaded(served)
            except Exception as error:  # one model failing leaves the others serving
                served.error = _why(error)
                served.failed_identity = target.identity if target is not None else None
                log.warning("could not load %s: %s", served.ref, served.error)
            finally:
                served.loading = False
        # Followed aliases move; a model that failed to load is tried again when what its
        # reference points to changes (a Production version appears, a fix is registered).
        self._tasks.append(loop.create_task(self._follow(), name="follow-aliases"))

    def _loaded(self, served: Served) -> None:
        current = served.current
        for callback in self.on_load:
            callback(served, current.loaded.load_seconds if current else 0.0)
        log.info(
            "serving %s as %s",
            served.ref,
            current.target.identity if current else None,
            extra={"model": served.ref},
        )

    # --- loading (on the loader thread) ---------------------------------------------

    def _base_for(self, adapter_base: str) -> _Base | None:
        with self._bases_lock:
            return self._bases.get(adapter_base)

    async def _load(self, target: Target) -> Current:
        """Files are read on the loader thread; every torch operation (building the
        engine, adding an adapter, int8, measuring accuracy) runs on the inference thread,
        the only thread that ever computes: once two threads have run OpenMP work, each
        keeps a team of threads and every later matmul was measured 2-3x slower on 2
        cores. Adding an adapter there takes milliseconds; a whole base model, seconds,
        but only at start-up or for a new base."""
        loop = asyncio.get_running_loop()
        saved = await loop.run_in_executor(self._loader, read_adapter, target.model_dir)
        rows = None
        if self.options.quantize == "int8":
            rows = await loop.run_in_executor(self._loader, evaluation.eval_rows, target.model_dir)
        return await loop.run_in_executor(self._inference, self._attach, target, saved, rows)

    def _attach(self, target: Target, saved: Any, rows: evaluation.EvalRows | None) -> Current:
        name = next(self._names)
        base = self._base_for(saved.meta.base_model)
        int8 = self.options.quantize == "int8"
        accuracy: dict[str, Any] | None = None
        if base is None:
            engine = Engine(
                saved,
                name,
                device=self.options.device,
                precision="fp32" if int8 else self.options.precision,
            )
            if self._merge_one():
                engine.merge()  # before int8: the merged weights are what gets quantized
            if int8:
                # fp32 first, then the same rows on the quantized weights.
                fp32 = evaluation.accuracy(engine, name, rows) if rows else None
                engine.quantize_int8()
                accuracy = _accuracy(fp32, "measured at load", engine, name, rows, saved)
            batcher = Batcher(
                engine.forward,
                max_batch_tokens=self.options.max_batch_tokens,
                max_wait_ms=self.options.max_wait_ms,
                max_queue=self.options.max_queue,
                executor=self._inference,
            )
            batcher.stats.observers.extend(self.batch_observers)
            base = _Base(engine=engine, batcher=batcher)
            with self._bases_lock:
                self._bases[saved.meta.base_model] = base
            assert self._loop is not None
            self._loop.call_soon_threadsafe(batcher.start)
            loaded = engine.adapters[name]
        else:
            loaded = base.engine.add(saved, name)
            if int8:
                # The base is int8 already: fp32 is the figure training measured.
                trained = _trained_accuracy(target.model_dir)
                accuracy = _accuracy(trained, "from training", base.engine, name, rows, saved)
        return Current(
            target=target,
            engine=base.engine,
            batcher=base.batcher,
            adapter=name,
            loaded=loaded,
            loaded_at=time.time(),
            accuracy=accuracy,
        )

    def _merge_one(self) -> bool:
        """One fixed model (not an alias to follow, nothing else to load): merged, which
        measured about 20 % faster than the same adapter unmerged."""
        if len(self.served) != 1:
            return False
        ref = self.served[0].ref
        return ":" in ref or not self.served[0].follows

    # --- following aliases ----------------------------------------------------------

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        retiring: list[Current] = []
        while True:
            await asyncio.sleep(self.options.follow_interval_s)
            retiring = [c for c in retiring if not self._retire(c)]
            for served in self.served:
                if not (served.follows or served.current is None):
                    continue
                try:
                    target = await loop.run_in_executor(
                        self._loader, resolve, self.settings, served.ref
                    )
                except Exception as error:
                    # The alias was removed, or the database is away: keep serving what we have.
                    served.swap_error = _why(error)
                    continue
                old = served.current
                if old is not None and old.target.identity == target.identity:
                    served.swap_error = None
                    continue
                if old is None and served.failed_identity == target.identity:
                    continue  # failed to load before, and nothing has changed since
                try:
                    new = await self._load(target)
                except Exception as error:
                    if old is None:
                        served.error, served.failed_identity = _why(error), target.identity
                    else:
                        served.swap_error = _why(error)
                    log.warning("could not load %s for %s: %s", target.identity, served.ref, error)
                    continue
                served.follows = target.name is not None and ":" not in served.ref
                served.current = new  # the swap: one assignment
                served.error, served.swap_error = None, None
                served.swaps += 1
                self._loaded(served)
                if old is not None:
                    log.info(
                        "%s moved from %s to %s",
                        served.ref,
                        old.target.identity,
                        new.target.identity,
                        extra={"model": served.ref},
                    )
                    retiring.append(old)
            retiring = [c for c in retiring if not self._retire(c)]

    def acquire(self, served: Served) -> Current | None:
        """The model a request is answered by, held until ``release`` (event loop only)."""
        current = served.current
        if current is not None:
            self._holders[current.adapter] = self._holders.get(current.adapter, 0) + 1
        return current

    def release(self, current: Current) -> None:
        left = self._holders.get(current.adapter, 0) - 1
        if left > 0:
            self._holders[current.adapter] = left
        else:
            self._holders.pop(current.adapter, None)

    def _retire(self, old: Current) -> bool:
        """Remove a swapped-out adapter once no request holds it; True when done."""
        if any(s.current is not None and s.current.adapter == old.adapter for s in self.served):
            return True  # still served under another reference: keep it
        if self._holders.get(old.adapter) or old.batcher.in_use.get(old.adapter):
            return False
        try:
            old.engine.remove(old.adapter)
        except ValueError:
            return True
        return True

    # --- lookups --------------------------------------------------------------------

    def find(self, model: str | None) -> Served:
        """The served model a request names (None: the only one)."""
        refs = ", ".join(s.ref for s in self.served)
        if model is None:
            if len(self.served) == 1:
                return self.served[0]
            raise InvalidInput(
                f"this server serves {len(self.served)} models: say which one",
                hint=f"Send `model`: one of {refs}.",
                field="model",
            )
        wanted = model.strip()
        for served in self.served:
            if served.ref == wanted:
                return served
        for served in self.served:
            current = served.current
            if current is None:
                continue
            target = current.target
            names = {target.identity, target.experiment_id}
            if target.name and served.follows:
                names.add(target.name)
                if "@" in served.ref:
                    names.add(f"{target.name}@{served.ref.split('@', 1)[1].lower()}")
            if wanted in names or wanted.lower() in names:
                return served
        raise NotFound(f"this server does not serve {model!r}", hint=f"It serves: {refs}.")

    def bases(self) -> list[dict[str, Any]]:
        """Each base model in memory: how it runs and what it costs."""
        return [
            {
                "base_model": name,
                "device": base.engine.device,
                "precision": base.engine.precision,
                "quantization": base.engine.quantize,
                "merged": base.engine.merged is not None,
                "adapters": len(base.engine.adapters),
                "memory_bytes": base.engine.memory_bytes(),
            }
            for name, base in list(self._bases.items())
        ]

    def queue_size(self) -> int:
        return sum(base.batcher.queue_size for base in self._bases.values())

    def batchers(self) -> list[Batcher]:
        return [base.batcher for base in self._bases.values()]


def _trained_accuracy(model_dir: Path) -> float | None:
    try:
        metrics = json.loads((model_dir.parent.parent / "metrics.json").read_text("utf-8"))
        return float(metrics["final"]["accuracy"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _accuracy(
    fp32: float | None,
    fp32_source: str,
    engine: Engine,
    name: str,
    rows: evaluation.EvalRows | None,
    saved: Any,
) -> dict[str, Any]:
    if rows is None:
        return {"fp32": None, "int8": None, "eval_rows": 0, "note": "eval data not available"}
    int8 = evaluation.accuracy(engine, name, rows)
    log.info(
        "%s int8 accuracy %.4f vs fp32 %s on %d eval rows",
        saved.meta.experiment_id,
        int8,
        "?" if fp32 is None else f"{fp32:.4f}",
        len(rows.texts),
    )
    return {
        "fp32": None if fp32 is None else round(fp32, 4),
        "int8": round(int8, 4),
        "eval_rows": len(rows.texts),
        "fp32_source": fp32_source,
    }


def _why(error: BaseException) -> str:
    if isinstance(error, LoraforgeError):
        return error.message + (f" ({error.hint})" if error.hint else "")
    return f"{type(error).__name__}: {error}"


@dataclass
class Answer:
    label: Any
    probability: float
    latency_ms: float
    base_model: str
    language: str
    model: str
    extra: dict[str, Any] = field(default_factory=dict)
