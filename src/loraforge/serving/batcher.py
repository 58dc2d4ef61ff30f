"""Micro-batching: concurrent requests in, padded-token-budget batches out.

Requests put their texts (already tokenized) into one bounded queue. A single task on the
event loop forms batches and hands each to one inference thread, so the model never runs
two batches at once and the event loop never runs the model:

- a batch closes when its padded size (longest text x texts) would pass
  ``max_batch_tokens``, or ``max_wait_ms`` after its oldest text arrived, whichever
  comes first (text-embeddings-inference closes on a token budget, Infinity waits 5 ms);
- a batch is built around the oldest waiting text from the texts of the nearest length,
  so padding is small and no text waits behind a stream of shorter ones;
- while the model runs one batch, the next fills: under load batches are full and the
  wait costs nothing; unloaded, a lone request waits at most ``max_wait_ms``;
- a full queue refuses at once (``QueueFull`` → 429 with Retry-After): full when the
  texts it holds (tokenizing, waiting or running) would pass ``max_queue``; an idle
  server takes any one valid request, even one of more texts than that;
- a request past its deadline is dropped from the queue (``TimedOut`` → 504).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from loraforge.errors import TimedOut, TooManyRequests

Rows = list[tuple[str, list[int]]]
# Padded tokens per batch: best of 256-8,192 for tweets on 2 cores (README, "Serving").
DEFAULT_BATCH_TOKENS = 512
Forward = Callable[[Rows], list[list[float]]]


class QueueFull(TooManyRequests):
    def __init__(self, waiting: int, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"the server is busy: {waiting} texts are waiting and the queue holds {limit}",
            hint=f"Send it again in {retry_after_s} s (Retry-After), or fewer texts at once.",
        )
        self.waiting, self.retry_after_s = waiting, retry_after_s


@dataclass
class _Request:
    texts: int
    arrived: float
    done: asyncio.Future
    results: list[Any]
    remaining: int
    queue_s: float = 0.0
    inference_s: float = 0.0
    cancelled: bool = False


@dataclass
class _Item:
    request: _Request
    index: int
    adapter: str
    ids: list[int]
    arrived: float


@dataclass
class BatchStats:
    """What the batcher has done, for metrics and for Retry-After."""

    batches: int = 0
    texts: int = 0
    busy_s: float = 0.0
    observers: list[Callable[[int, int, float], None]] = field(default_factory=list)


class Batcher:
    def __init__(
        self,
        forward: Forward,
        *,
        max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        if max_batch_tokens < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_tokens and max_queue must be ≥ 1, max_wait_ms ≥ 0")
        self._forward = forward
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        # A shared executor (one inference thread for several base models) is its owner's
        # to shut down; our own is ours.
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._pending: list[_Item] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.stats = BatchStats()
        # Adapter name → texts queued or running with it: a swapped-out adapter is
        # removed only once nothing refers to it any more.
        self.in_use: dict[str, int] = {}
        self.admitted = 0  # texts between admit() and leave(): the queue's bound

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for item in self._pending:
            if not item.request.done.done():
                item.request.done.set_exception(TimedOut("the server is stopping"))
                item.request.done.exception()  # retrieved: no "never retrieved" warning
        self._pending.clear()
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def queue_size(self) -> int:
        return len(self._pending)

    # --- requests -------------------------------------------------------------------

    def admit(self, texts: int) -> None:
        """Take ``texts`` into the server, or refuse at once (429) when the texts already
        in it (tokenizing, waiting or running) would pass ``max_queue``. Counted from the
        request's arrival, not from its place in the batch queue: otherwise a flood piles
        up unbounded in front of the queue (measured: 22 s p99 at 4x the sustainable rate)."""
        if self.admitted and self.admitted + texts > self.max_queue:
            raise self.refusal(texts)
        self.admitted += texts

    def leave(self, texts: int) -> None:
        self.admitted -= texts

    @property
    def full(self) -> bool:
        """No request of even one text would be admitted now."""
        return self.admitted >= self.max_queue

    def refusal(self, texts: int = 1) -> QueueFull:
        return QueueFull(self.admitted, self.max_queue, self._retry_after(self.admitted + texts))

    def _retry_after(self, waiting: int) -> int:
        rate = self.stats.texts / self.stats.busy_s if self.stats.busy_s > 0 else 0
        return max(1, math.ceil(waiting / rate)) if rate else 1

    async def submit(
        self, adapter: str, token_ids: list[list[int]], *, timeout_s: float | None = None
    ) -> tuple[list[list[float]], float, float]:
        """Probabilities per text, with the request's queue and inference seconds."""
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        request = _Request(
            texts=len(token_ids),
            arrived=now,
            done=loop.create_future(),
            results=[None] * len(token_ids),
            remaining=len(token_ids),
        )
        for index, ids in enumerate(token_ids):
            self._pending.append(_Item(request, index, adapter, ids, now))
        self.in_use[adapter] = self.in_use.get(adapter, 0) + len(token_ids)
        self._arrived.set()
        try:
            await asyncio.wait_for(asyncio.shield(request.done), timeout_s)
        except TimeoutError:
            request.cancelled = True
            dropped = [i for i in self._pending if i.request is request]
            self._pending = [i for i in self._pending if i.request is not request]
            self._release(dropped)
            raise TimedOut(
                f"no answer within {timeout_s * 1000:.0f} ms",
                hint="The server is overloaded: send it again later, or fewer texts at once.",
            ) from None
        return request.results, request.queue_s, request.inference_s

    def _release(self, items: list[_Item]) -> None:
        for item in items:
            left = self.in_use.get(item.adapter, 0) - 1
            if left > 0:
                self.in_use[item.adapter] = left
            else:
                self.in_use.pop(item.adapter, None)

    # --- the loop -------------------------------------------------------------------

    def _cost(self, items: list[_Item]) -> int:
        return max(len(i.ids) for i in items) * len(items) if items else 0

    def _next_batch(self) -> list[_Item]:
        """The oldest text and the texts nearest its length, within the token budget."""
        oldest = self._pending[0]
        by_distance = sorted(self._pending[1:], key=lambda i: abs(len(i.ids) - len(oldest.ids)))
        batch, longest = [oldest], len(oldest.ids)
        for item in by_distance:
            width = max(longest, len(item.ids))
            if width * (len(batch) + 1) > self.max_batch_tokens:
                break
            batch.append(item)
            longest = width
        chosen = {id(i) for i in batch}
        self._pending = [i for i in self._pending if id(i) not in chosen]
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            # Wait for a full budget or for the oldest text's deadline, whichever is first.
            deadline = self._pending[0].arrived + self.max_wait_s
            while self._cost(self._pending) < self.max_batch_tokens:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            if not self._pending:
                continue
            batch = self._next_batch()
            started = time.perf_counter()
            rows = [(item.adapter, item.ids) for item in batch]
            try:
                outputs = await loop.run_in_executor(self._executor, self._forward, rows)
                error = None
            except Exception as failure:  # the model failed: these requests fail, not the loop
                outputs, error = None, failure
            finished = time.perf_counter()
            self._deliver(batch, outputs, error, started, finished)

    def _deliver(
        self,
        batch: list[_Item],
        outputs: list[list[float]] | None,
        error: Exception | None,
        started: float,
        finished: float,
    ) -> None:
        self._release(batch)
        self.stats.batches += 1
        self.stats.texts += len(batch)
        self.stats.busy_s += finished - started
        tokens = sum(len(i.ids) for i in batch)
        for observe in self.stats.observers:
            observe(len(batch), tokens, finished - started)
        counted: set[int] = set()
        for position, item in enumerate(batch):
            request = item.request
            if request.cancelled or request.done.done():
                continue
            if error is not None:
                request.done.set_exception(error)
                continue
            request.results[item.index] = outputs[position]
            request.queue_s = max(request.queue_s, started - item.arrived)
            if id(request) not in counted:  # a request's texts in one batch: one pass
                counted.add(id(request))
                request.inference_s += finished - started
            request.remaining -= 1
            if request.remaining == 0:
                request.done.set_result(None)
