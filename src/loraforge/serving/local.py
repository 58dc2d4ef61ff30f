"""The platform's own predictions (``POST /predict`` of the API, hence the UI's Try it):
the serving engine and batcher in process, with a bounded cache of adapters.

Models are asked for one request at a time by experiment or registry reference, so
adapters are loaded on first use onto one engine per base model and kept, at most
``capacity`` of them; the least recently used leaves first (never one a request holds).

The batchers run on an event loop of their own, in a thread: the API's handlers (on
uvicorn's loop, or a test client's short-lived ones) and synchronous callers submit to
it and wait, so a batcher never outlives the loop it was started on.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.serving.adapters import read_adapter
from loraforge.serving.batcher import DEFAULT_BATCH_TOKENS, Batcher
from loraforge.serving.engine import Engine, Loaded, Prediction

log = logging.getLogger("loraforge.serving.local")

CAPACITY = 8  # adapters kept; a MiniLM adapter and head is ~1 MB, its base ~90 MB once
MAX_WAIT_MS = 5.0
MAX_QUEUE = 4096
TIMEOUT_S = 120.0


@dataclass
class _Entry:
    base: str
    name: str
    loaded: Loaded


@functools.lru_cache(maxsize=1)
def shared() -> LocalPredictions:
    """This process's one instance (the API's workers each have their own)."""
    from loraforge.models.device import select_device

    return LocalPredictions(device=select_device("auto"))


class LocalPredictions:
    def __init__(self, *, device: str = "cpu", capacity: int = CAPACITY) -> None:
        self.device = device
        self.capacity = capacity
        self._engines: dict[str, Engine] = {}
        self._batchers: dict[str, Batcher] = {}
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._holders: dict[str, int] = {}
        self._names = (f"c{i}" for i in itertools.count())
        # Engines are changed by loads (a thread) and evictions (the loop): one at a time.
        self._lock = threading.Lock()
        self._loading: dict[str, asyncio.Future] = {}
        self._inference = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._tokenizing = ThreadPoolExecutor(1, thread_name_prefix="tokenize")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="predict")
        self._thread.start()

    # --- the public, thread-safe side -----------------------------------------------

    def predict(self, key: str, model_dir: Path, texts: list[str]) -> list[Prediction]:
        """Blocking: from a thread (FastAPI's thread pool, the CLI)."""
        future = asyncio.run_coroutine_threadsafe(self._predict(key, model_dir, texts), self._loop)
        return future.result()

    async def predict_async(self, key: str, model_dir: Path, texts: list[str]) -> list[Prediction]:
        future = asyncio.run_coroutine_threadsafe(self._predict(key, model_dir, texts), self._loop)
        return await asyncio.wrap_future(future)

    def forget(self, key: str) -> None:
        """Drop a model (its experiment was deleted); a request holding it finishes first."""
        asyncio.run_coroutine_threadsafe(self._forget(key), self._loop).result()

    def close(self) -> None:
        async def stop() -> None:
            for batcher in self._batchers.values():
                await batcher.stop()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._inference.shutdown(wait=False, cancel_futures=True)
        self._tokenizing.shutdown(wait=False, cancel_futures=True)

    # --- on the loop thread ---------------------------------------------------------

    async def _predict(self, key: str, model_dir: Path, texts: list[str]) -> list[Prediction]:
        arrived = time.perf_counter()
        loop = asyncio.get_running_loop()
        entry = self._entries.get(key)
        if entry is None:
            entry = await self._loaded(key, model_dir)
        self._entries.move_to_end(key)
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            engine, batcher = self._engines[entry.base], self._batchers[entry.base]
            ids = await loop.run_in_executor(
                self._tokenizing, engine.tokenize, texts, entry.loaded.max_length
            )
            batcher.admit(len(ids))
            try:
                probabilities, _, _ = await batcher.submit(entry.name, ids, timeout_s=TIMEOUT_S)
            finally:
                batcher.leave(len(ids))
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key]
        latency_ms = round((time.perf_counter() - arrived) * 1000, 2)
        out = [entry.loaded.answer(row, latency_ms) for row in probabilities]
        self._evict()
        return out

    async def _loaded(self, key: str, model_dir: Path) -> _Entry:
        """Load once however many requests ask at the same moment."""
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._loading[key] = pending
        try:
            # In threads (seconds): the loop keeps answering the models already loaded.
            # Files on any thread; torch only on the inference thread (serving/models.py).
            loop = asyncio.get_running_loop()
            saved = await loop.run_in_executor(None, read_adapter, model_dir)
            entry = await loop.run_in_executor(self._inference, self._load, saved)
        except BaseException as error:
            pending.set_exception(error)
            pending.exception()  # retrieved here: the waiters re-raise it
            raise
        finally:
            del self._loading[key]
        self._entries[key] = entry
        pending.set_result(entry)
        return entry

    def _load(self, saved: Any) -> _Entry:
        with self._lock:
            base = saved.meta.base_model
            name = next(self._names)
            engine = self._engines.get(base)
            if engine is None:
                engine = Engine(saved, name, device=self.device, precision="auto")
                batcher = Batcher(
                    engine.forward,
                    max_batch_tokens=DEFAULT_BATCH_TOKENS,
                    max_wait_ms=MAX_WAIT_MS,
                    max_queue=MAX_QUEUE,
                    executor=self._inference,
                )
                self._loop.call_soon_threadsafe(batcher.start)
                self._engines[base], self._batchers[base] = engine, batcher
                loaded = engine.adapters[name]
            else:
                loaded = engine.add(saved, name)
            return _Entry(base=base, name=name, loaded=loaded)

    def _evict(self) -> None:
        for key in list(self._entries):
            if len(self._entries) <= self.capacity:
                return
            if self._holders.get(key) or self._batcher_uses(key):
                continue
            self._drop(key)

    def _batcher_uses(self, key: str) -> bool:
        entry = self._entries[key]
        return bool(self._batchers[entry.base].in_use.get(entry.name))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        with self._lock:
            engine = self._engines[entry.base]
            if len(engine.adapters) > 1:
                engine.remove(entry.name)
                return
            # Its base's last adapter: the base model goes too.
            del self._engines[entry.base]
            batcher = self._batchers.pop(entry.base)
        self._loop.create_task(batcher.stop())
        log.info("unloaded %s and its base model %s", key, entry.base)

    async def _forget(self, key: str) -> None:
        while self._holders.get(key) or (key in self._entries and self._batcher_uses(key)):
            await asyncio.sleep(0.05)
        if key in self._entries:
            self._drop(key)
