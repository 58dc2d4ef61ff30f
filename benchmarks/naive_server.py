"""The baseline of benchmarks/serve_load.py: what most people write first.

A FastAPI endpoint calling a transformers text-classification pipeline on each request,
with the adapter merged into the base model, fp32, no batching across requests (FastAPI
runs each call in its thread pool).

    .venv/bin/python benchmarks/naive_server.py MODEL_DIR --port 8200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    texts: list[str]
    model: str | None = None


def build(model_dir: Path) -> FastAPI:
    import torch
    from peft import PeftModel
    from transformers import pipeline

    from loraforge.models.artifacts import read_model_meta
    from loraforge.models.catalog import resolve_base_model
    from loraforge.models.loading import load_classifier

    torch.set_num_threads(torch.get_num_threads())
    meta = read_model_meta(model_dir)
    tokenizer, base = load_classifier(
        resolve_base_model(meta.base_model), meta.labels, tokenizer_source=str(model_dir)
    )
    model = PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload().eval()
    classify = pipeline(
        "text-classification",
        model=model,
        tokenizer=tokenizer,
        device="cpu",
        truncation=True,
        max_length=meta.max_length,
    )
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: Body) -> dict:
        began = time.perf_counter()
        answers = classify(body.texts)
        latency = round((time.perf_counter() - began) * 1000, 2)
        return {
            "data": [
                {"label": a["label"], "probability": a["score"], "latency_ms": latency}
                for a in answers
            ]
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--port", type=int, default=8200)
    args = parser.parse_args()
    uvicorn.run(build(args.model_dir), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
