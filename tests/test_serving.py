"""The serving engine, batcher and server: one base, many adapters, mixed batches, int8,
overload (429), deadlines (504), health with a model that failed, hot swap under load."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import torch
import uvicorn
from conftest import make_texts, tiny_config_tree
from services import free_port

from loraforge.auth.users import local_operator
from loraforge.errors import TimedOut, TooManyRequests
from loraforge.inference.predictor import final_model_dir
from loraforge.serving.adapters import read_adapter
from loraforge.serving.batcher import Batcher
from loraforge.serving.engine import Engine
from loraforge.serving.models import ServerOptions
from loraforge.serving.server import MAX_TEXT_CHARS, MAX_TEXTS, create_serve_app

TEXTS = [
    "good flight really",
    "awful movie and very boring",
    "the food",
    "love it wonderful great happy service today",
    "sad",
    "the service was very poor and the food was horrible and boring",
]


@pytest.fixture(scope="module")
def three_class_run(tiny_model_dir, shared_settings, tmp_path_factory):
    """A second tiny model on the same base, with three labels instead of two, another
    rank and scaling, and a layer (key) the first adapter does not touch."""
    from loraforge.config import config_from_tree
    from loraforge.training.runner import run_training

    folder = tmp_path_factory.mktemp("three")
    frame = make_texts(90, seed=5)
    frame.loc[frame.index % 3 == 0, "label"] = "neutral"
    frame.to_csv(folder / "train.csv", index=False)
    frame.iloc[:30].to_csv(folder / "eval.csv", index=False)
    tree = tiny_config_tree(
        tiny_model_dir, {"train": folder / "train.csv", "eval": folder / "eval.csv"}, epochs=2
    )
    tree["experiment_name"] = "three"
    tree["lora"] = {"r": 6, "alpha": 24, "target_modules": ["query", "key", "value"]}
    return run_training(config_from_tree(tree, source="test"), settings=shared_settings)


def _reference(model_dir: Path, texts: list[str]) -> list[list[float]]:
    """The adapter merged into its base, the plain PEFT way: what the engine must match."""
    from peft import PeftModel

    from loraforge.models.artifacts import read_model_meta
    from loraforge.models.catalog import resolve_base_model
    from loraforge.models.loading import load_classifier

    meta = read_model_meta(model_dir)
    tokenizer, base = load_classifier(
        resolve_base_model(meta.base_model), meta.labels, tokenizer_source=str(model_dir)
    )
    model = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload().eval()
    encoded = tokenizer(
        texts, truncation=True, max_length=meta.max_length, padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        return torch.softmax(model(**encoded).logits, dim=-1).tolist()


def _close(a: list[float], b: list[float], tolerance: float = 1e-4) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_a_text_gets_the_same_answer_alone_and_in_any_mixed_batch(tiny_run, three_class_run):
    two = final_model_dir(tiny_run.results_dir)
    three = final_model_dir(three_class_run.results_dir)
    engine = Engine(read_adapter(two), "two")
    engine.add(read_adapter(three), "three")
    ids = engine.tokenize(TEXTS, 32)
    expected = {"two": _reference(two, TEXTS), "three": _reference(three, TEXTS)}

    alone = {name: [engine.forward([(name, row)])[0] for row in ids] for name in ("two", "three")}
    for name in ("two", "three"):
        for got, want in zip(alone[name], expected[name], strict=True):
            assert _close(got, want), (name, got, want)
    rng = random.Random(0)
    for _ in range(20):
        rows = [(rng.choice(["two", "three"]), rng.randrange(len(TEXTS))) for _ in range(7)]
        answers = engine.forward([(name, ids[i]) for name, i in rows])
        for (name, i), got in zip(rows, answers, strict=True):
            assert len(got) == (2 if name == "two" else 3)
            assert _close(got, alone[name][i], 1e-5), (name, i, got, alone[name][i])
    # The gathered LoRA path (lora_rows) against PEFT's own adapter_names forward.
    assert engine._router is not None
    rows = [("two", ids[0]), ("three", ids[1]), ("three", ids[3]), ("two", ids[5])]
    gathered = engine.forward(rows)
    engine._router, router = None, engine._router
    try:
        peft_path = engine.forward(rows)
    finally:
        engine._router = router
    for got, want in zip(gathered, peft_path, strict=True):
        assert _close(got, want, 1e-5), (got, want)


def test_ten_adapters_on_one_base_cost_little_more_than_one(tiny_run):
    folder = final_model_dir(tiny_run.results_dir)
    engine = Engine(read_adapter(folder), "m0")
    one = engine.memory_bytes()
    for i in range(1, 10):
        engine.add(read_adapter(folder), f"m{i}")
    adapter = engine.adapters["m0"].parameters * 4
    assert engine.memory_bytes() == pytest.approx(one + 9 * adapter, rel=0.01)
    engine.remove("m3")
    assert "m3" not in engine.adapters
    assert engine.forward([("m4", [2, 10, 11, 3])])


def test_int8_keeps_lora_and_heads_in_float_and_answers_close_to_fp32(tiny_run, three_class_run):
    two = final_model_dir(tiny_run.results_dir)
    fp32 = Engine(read_adapter(two), "a")
    int8 = Engine(read_adapter(two), "a", quantize="int8")
    # An adapter added after quantization (a hot swap on an int8 server) works too.
    int8.add(read_adapter(final_model_dir(three_class_run.results_dir)), "b")
    ids = fp32.tokenize(TEXTS, 32)
    for row in ids:
        assert _close(int8.forward([("a", row)])[0], fp32.forward([("a", row)])[0], 0.02)
    assert len(int8.forward([("b", ids[0]), ("a", ids[1])])[0]) == 3
    assert int8.memory_bytes() < fp32.memory_bytes()
    names = [n for n, m in int8.model.named_modules() if type(m) is torch.nn.Linear]
    assert names and all(("lora_" in n) or (".heads." in n) for n in names)


# --- batcher -------------------------------------------------------------------------


def _slow_forward(seconds: float, seen: list[list[tuple[str, list[int]]]]):
    def forward(rows):
        seen.append(rows)
        time.sleep(seconds)
        return [[float(len(ids))] for _, ids in rows]

    return forward


def test_batches_keep_to_the_token_budget_and_answers_to_their_texts():
    seen: list = []

    async def scenario():
        batcher = Batcher(_slow_forward(0.01, seen), max_batch_tokens=40, max_wait_ms=20)
        batcher.start()
        requests = [[[1] * n for n in (3, 9, 4)], [[1] * 10], [[1] * n for n in range(1, 12)]]
        results = await asyncio.gather(*(batcher.submit("a", r) for r in requests))
        await batcher.stop()
        return requests, results

    requests, results = asyncio.run(scenario())
    for request, (probabilities, queue_s, inference_s) in zip(requests, results, strict=True):
        assert [p[0] for p in probabilities] == [float(len(ids)) for ids in request]
        assert queue_s >= 0 and inference_s > 0
    for rows in seen:
        assert max(len(ids) for _, ids in rows) * len(rows) <= 40 or len(rows) == 1


def test_a_full_queue_refuses_at_once_and_a_late_request_times_out():
    seen: list = []

    async def scenario():
        batcher = Batcher(_slow_forward(0.3, seen), max_batch_tokens=4, max_queue=4, max_wait_ms=0)
        batcher.start()

        async def request(texts):
            batcher.admit(len(texts))  # as the server does, from the request's arrival
            try:
                return await batcher.submit("a", texts)
            finally:
                batcher.leave(len(texts))

        first = asyncio.ensure_future(request([[1, 2]]))  # runs for 0.3 s
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(request([[1], [2]]))
        await asyncio.sleep(0.01)
        with pytest.raises(TooManyRequests) as full:
            batcher.admit(2)  # 3 texts held, room for 1
        assert full.value.retry_after_s >= 1
        with pytest.raises(TimedOut):
            await batcher.submit("b", [[5]], timeout_s=0.05)
        await first
        await queued
        assert batcher.queue_size == 0 and batcher.in_use == {} and batcher.admitted == 0
        # An idle server takes one request of more texts than the queue holds (it could
        # never be admitted otherwise); a second one beside it is refused.
        big = asyncio.ensure_future(request([[1]] * 6))
        await asyncio.sleep(0.01)
        assert batcher.full
        with pytest.raises(TooManyRequests):
            batcher.admit(1)
        assert len((await big)[0]) == 6
        await batcher.stop()

    asyncio.run(scenario())


# --- the server ----------------------------------------------------------------------


class LiveServe:
    def __init__(self, settings, refs, options=None, *, timeout_ms=30_000):
        self.app = create_serve_app(
            settings, refs, options or ServerOptions(), timeout_ms=timeout_ms
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=int(self.url.rsplit(":", 1)[1]), log_config=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.client = httpx.Client(base_url=self.url, timeout=30)
        while any(m["status"] == "loading" for m in self.client.get("/health").json()["models"]):
            assert time.monotonic() < deadline + 30, "the models did not load"
            time.sleep(0.05)

    def stop(self):
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_serve():
    started = []

    def start(*args, **kwargs):
        server = LiveServe(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_health_names_the_model_that_failed_while_the_others_serve(
    live_serve, shared_settings, tiny_run
):
    serve = live_serve(shared_settings, [tiny_run.experiment_id, "no-such-model@production"])
    health = serve.client.get("/health")
    assert health.status_code == 503
    body = health.json()
    assert "no-such-model@production" in body["detail"] and body["hint"]
    statuses = {m["ref"]: m["status"] for m in body["models"]}
    assert statuses == {tiny_run.experiment_id: "loaded", "no-such-model@production": "failed"}
    answer = serve.client.post(
        "/predict", json={"texts": ["good flight"], "model": tiny_run.experiment_id}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == tiny_run.experiment_id
    down = serve.client.post("/predict", json={"texts": ["x"], "model": "no-such-model@production"})
    assert down.status_code == 503 and down.json()["detail"]
    loaded = serve.client.get("/models").json()
    assert loaded["base_models"][0]["memory_bytes"] > 0
    metrics = serve.client.get("/metrics").text
    assert "lf_serve_models_loaded 1.0" in metrics and "lf_serve_models_requested 2.0" in metrics


def test_bad_requests_are_refused_with_the_field_and_a_hint(live_serve, shared_settings, tiny_run):
    serve = live_serve(shared_settings, [tiny_run.experiment_id])
    post = serve.client.post
    cases = [
        ({"texts": []}, 422, "texts"),
        ({"texts": ["ok", "  "]}, 422, "texts.1"),
        ({"texts": ["ok", 3]}, 422, "texts.1"),
        ({"texts": ["x" * (MAX_TEXT_CHARS + 1)]}, 422, "texts.0"),
        ({"texts": ["x"] * (MAX_TEXTS + 1)}, 422, "texts"),
        ({"texts": ["x"], "colour": "red"}, 422, "colour"),
    ]
    for body, status, field in cases:
        answer = post("/predict", json=body)
        assert answer.status_code == status, (body, answer.text)
        payload = answer.json()
        assert payload["hint"] and field in [e["field"] for e in payload["errors"]], payload
    unknown = post("/predict", json={"texts": ["x"], "model": "other:1"})
    assert unknown.status_code == 404 and tiny_run.experiment_id in unknown.json()["hint"]
    # One model served: `model` may be left out.
    alone = post("/predict", json={"texts": ["good", "bad"]})
    assert alone.status_code == 200 and len(alone.json()["data"]) == 2


def test_overload_is_429_with_retry_after_and_a_deadline_is_504(
    live_serve, shared_settings, tiny_run, monkeypatch
):
    serve = live_serve(
        shared_settings,
        [tiny_run.experiment_id],
        ServerOptions(max_queue=8, max_batch_tokens=64, max_wait_ms=0),
        timeout_ms=400,
    )
    batcher = serve.app.state.models.served[0].current.batcher
    forward = batcher._forward

    def slow(rows):
        time.sleep(0.6)  # longer than the 400 ms a request may take
        return forward(rows)

    monkeypatch.setattr(batcher, "_forward", slow)

    async def flood():
        async with httpx.AsyncClient(base_url=serve.url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/predict", json={"texts": ["good flight"] * 4}) for _ in range(12))
            )

    answers = asyncio.run(flood())
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {429, 504}, statuses
    for answer in answers:
        body = answer.json()
        assert body["detail"] and body["hint"]
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1
    # While every queue is full a request is refused before its body is read: even a
    # malformed one gets the 429 (the cheap refusal that keeps a flood from starving the
    # answers), and the request log counts it under the served model.
    batcher.admitted += batcher.max_queue
    try:
        early = serve.client.post("/predict", content=b"not json")
    finally:
        batcher.admitted -= batcher.max_queue
    assert early.status_code == 429 and early.json()["hint"], early.text
    assert int(early.headers["Retry-After"]) >= 1
    assert serve.client.post("/predict", content=b"not json").status_code == 422
    monkeypatch.setattr(batcher, "_forward", forward)
    time.sleep(0.7)  # the batch in flight ends
    again = serve.client.post("/predict", json={"texts": ["good flight"]})
    assert again.status_code == 200, again.text
    metrics = serve.client.get("/metrics").text
    assert 'status="429"' in metrics and 'status="504"' in metrics


def test_a_server_following_production_swaps_versions_under_load_without_an_error(
    live_serve, shared_settings, tiny_run, three_class_run
):
    from loraforge.registry import service

    name = f"swap-{uuid.uuid4().hex[:6]}"
    operator = local_operator()
    for run in (tiny_run, three_class_run):
        service.register_version(
            shared_settings, experiment_id=run.experiment_id, name=name, user=operator
        )
    for stage in ("Staging", "Production"):
        service.transition_version(
            shared_settings, name=name, version=1, stage=stage, user=operator
        )

    serve = live_serve(
        shared_settings, [f"{name}@production"], ServerOptions(follow_interval_s=0.2)
    )
    answers: list[httpx.Response] = []
    stop = threading.Event()

    def load():
        with httpx.Client(base_url=serve.url, timeout=30) as client:
            while not stop.is_set():
                answers.append(client.post("/predict", json={"texts": TEXTS[:3]}))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    service.transition_version(
        shared_settings, name=name, version=2, stage="Staging", user=operator
    )
    service.transition_version(
        shared_settings,
        name=name,
        version=2,
        stage="Production",
        user=operator,
        force=True,
        reason="swap test",
    )
    deadline = time.monotonic() + 30
    while not any(a.json().get("model") == f"{name}:2" for a in answers[-20:]):
        assert time.monotonic() < deadline, serve.client.get("/models").json()
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join()
    assert answers and all(a.status_code == 200 for a in answers), {a.status_code for a in answers}
    # Each answer is wholly one version's.
    assert {a.json()["model"] for a in answers} == {f"{name}:1", f"{name}:2"}
    served = serve.client.get("/models").json()["data"][0]
    assert served["model"] == f"{name}:2" and served["swaps"] == 1
    assert served["labels"] == ["negative", "neutral", "positive"]
    engine = serve.app.state.models.served[0].current.engine
    deadline = time.monotonic() + 10
    while len(engine.adapters) > 1:  # the old adapter is retired once nothing uses it
        assert time.monotonic() < deadline, list(engine.adapters)
        time.sleep(0.1)


def test_in_production_predict_needs_a_valid_token_of_its_scope(
    live_serve, shared_settings, tiny_run
):
    import jwt

    from loraforge.auth import service_tokens, users
    from loraforge.db.engine import session_scope
    from loraforge.db.models import ServiceToken
    from loraforge.settings import Settings

    settings = Settings(
        data_dir=shared_settings.data_dir,
        results_dir=shared_settings.results_dir,
        env="production",
        jwt_secret="s" * 48,
    )
    operator = local_operator()
    with session_scope(settings.resolved_database_url()) as session:
        good, row = service_tokens.create(
            session, name="checkout", scope="predict", actor=operator, settings=settings
        )
        doomed, doomed_row = service_tokens.create(
            session, name="old", scope="predict", actor=operator, settings=settings
        )
        # A token of another scope (none is issued yet; the check must hold when one is).
        session.add(
            ServiceToken(
                id="x" * 32,
                name="trainer",
                scope="train",
                created_by="test",
                created_at=row.created_at,
                expires_at=row.expires_at,
            )
        )
        other = jwt.encode(
            {"sub": "service:" + "x" * 32, "iat": row.created_at, "exp": row.expires_at},
            settings.jwt_secret.get_secret_value(),
            algorithm="HS256",
        )
        person = users.create_user(
            session, username=f"p{uuid.uuid4().hex[:6]}", password="pw-12345678"
        )
    from loraforge.auth.tokens import create_access_token

    user_token, _ = create_access_token(user_id=person.id, settings=settings)
    serve = live_serve(settings, [tiny_run.experiment_id])

    def predict(token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return serve.client.post("/predict", json={"texts": ["good"]}, headers=headers)

    assert predict().status_code == 401 and predict().json()["hint"]
    assert predict("not-a-jwt").status_code == 401
    assert predict(good).status_code == 200
    assert predict(user_token).status_code == 200
    assert predict(other).status_code == 403
    with session_scope(settings.resolved_database_url()) as session:
        service_tokens.revoke(session, doomed_row.id, actor=operator)
    refused = predict(doomed)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert serve.client.get("/health").status_code == 200  # health stays public
    assert serve.client.get("/models").status_code == 401


def test_an_int8_server_reports_its_accuracy_beside_fp32(live_serve, shared_settings, tiny_run):
    serve = live_serve(shared_settings, [tiny_run.experiment_id], ServerOptions(quantize="int8"))
    [model] = serve.client.get("/models").json()["data"]
    assert model["quantization"] == "int8"
    accuracy = model["accuracy"]
    assert accuracy["eval_rows"] == 32 and accuracy["fp32_source"] == "measured at load"
    assert 0 <= accuracy["int8"] <= 1 and abs(accuracy["int8"] - accuracy["fp32"]) <= 0.1
    # The fp32 figure is the training run's own, measured again here.
    assert accuracy["fp32"] == pytest.approx(tiny_run.metrics["final"]["accuracy"], abs=1e-3)
    assert serve.client.post("/predict", json={"texts": ["good"]}).status_code == 200
