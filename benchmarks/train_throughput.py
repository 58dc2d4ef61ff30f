"""Training throughput: loraforge's path vs a plain Trainer + PEFT script vs a hand loop.

The same LoRA fine-tune three ways in one process: the bundled MiniLM-L6, 2,000 demo
examples, one epoch, batch 32, max_length 128, LoRA r=8 on the attention and
feed-forward projections, learning rate 2e-3 with 10 % warm-up, seed 42. The
hyperparameters are the same for all three so that accuracy is comparable; what
differs is how the training runs:

- loraforge: ``run_training`` as the CLI calls it (length-grouped batches, dynamic
  padding, bf16 autocast where the CPU/GPU runs it natively);
- plain Trainer: a Trainer + PEFT script with the Trainer's default settings (random
  order, dynamic padding, fp32);
- hand loop: a PyTorch loop over batches padded to max_length, fp32.

Timings cover the training loop only (no model loading, no evaluation). Tokens/s counts
real (non-padding) tokens. MFU is model FLOPs per second over the matmul FLOP/s this
machine measures at the precision the path trains in.

    .venv/bin/python benchmarks/train_throughput.py [--train-size 2000] [--eval-size 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from loraforge.config import config_from_tree
from loraforge.data.demo import write_demo
from loraforge.models.catalog import resolve_base_model
from loraforge.models.device import select_device
from loraforge.models.lora_targets import default_target_modules
from loraforge.settings import Settings
from loraforge.training.metrics import classification_metrics
from loraforge.training.runner import run_training

SEED = 42
BATCH = 32
MAX_LENGTH = 128
LR = 2e-3
WARMUP = 0.1
LORA = {"r": 8, "alpha": 16, "dropout": 0.1}


def matmul_flops_per_second(
    dtype: torch.dtype, device: str, n: int = 1024, repeats: int = 20
) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def training_flops_per_token(model, mean_length: float) -> float:
    """Frozen linear layers cost forward + input gradients (4 FLOPs per weight per token);
    LoRA weights also get weight gradients (6); attention costs 3x its forward."""
    frozen, trainable = 0, 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            for p in module.parameters(recurse=False):
                if p.dim() == 2:
                    if p.requires_grad:
                        trainable += p.numel()
                    else:
                        frozen += p.numel()
    config = model.config
    attention = 3 * 4 * mean_length * config.hidden_size * config.num_hidden_layers
    return 4 * frozen + 6 * trainable + attention


def lora_model(source: str, num_labels: int):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, set_seed

    set_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=num_labels, use_safetensors=True
    )
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=default_target_modules(model.config.model_type),
    )
    return get_peft_model(model, config)


class Examples(torch.utils.data.Dataset):
    def __init__(self, encoded, labels):
        self.items = [
            {"input_ids": i, "attention_mask": a, "labels": y}
            for i, a, y in zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def plain_trainer(source, tokenizer, train, evaluation, labels, work: Path) -> dict:
    from transformers import Trainer, TrainingArguments

    ids = {label: i for i, label in enumerate(labels)}
    encode = lambda frame: Examples(  # noqa: E731
        tokenizer(list(frame["text"]), truncation=True, max_length=MAX_LENGTH),
        [ids[y] for y in frame["label"]],
    )
    train_set, eval_set = encode(train), encode(evaluation)
    model = lora_model(source, len(labels))
    args = TrainingArguments(
        output_dir=str(work / "plain"),
        num_train_epochs=1,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=64,
        learning_rate=LR,
        warmup_steps=WARMUP,
        seed=SEED,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_set, processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    predictions = trainer.predict(eval_set)
    accuracy = classification_metrics(
        predictions.label_ids, predictions.predictions.argmax(-1), len(labels)
    )["accuracy"]
    return {"seconds": seconds, "accuracy": accuracy, "model": model, "precision": "fp32"}


def hand_loop(source, tokenizer, train, evaluation, labels, device: str) -> dict:
    from transformers import get_linear_schedule_with_warmup

    ids = {label: i for i, label in enumerate(labels)}
    model = lora_model(source, len(labels)).to(device)
    encoded = tokenizer(
        list(train["text"]),
        truncation=True,
        max_length=MAX_LENGTH,
        padding="max_length",
        return_tensors="pt",
    )
    targets = torch.tensor([ids[y] for y in train["label"]])
    steps = (len(train) + BATCH - 1) // BATCH
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.0
    )
    schedule = get_linear_schedule_with_warmup(optimizer, int(WARMUP * steps), steps)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(SEED))
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        batch = order[step * BATCH : (step + 1) * BATCH]
        out = model(
            input_ids=encoded["input_ids"][batch].to(device),
            attention_mask=encoded["attention_mask"][batch].to(device),
            labels=targets[batch].to(device),
        )
        out.loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.eval()
    predicted = []
    texts = list(evaluation["text"])
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            enc = tokenizer(
                texts[i : i + 64],
                truncation=True,
                max_length=MAX_LENGTH,
                padding="max_length",
                return_tensors="pt",
            ).to(device)
            predicted.extend(model(**enc).logits.argmax(-1).tolist())
    accuracy = classification_metrics(
        np.array([ids[y] for y in evaluation["label"]]), np.array(predicted), len(labels)
    )["accuracy"]
    return {"seconds": seconds, "accuracy": accuracy, "model": model, "precision": "fp32"}


def loraforge_path(train_file: Path, eval_file: Path, work: Path) -> dict:
    config = config_from_tree(
        {
            "experiment_name": "benchmark",
            "data": {
                "train_file": str(train_file),
                "eval_file": str(eval_file),
                "max_length": MAX_LENGTH,
            },
            "lora": LORA,
            "training": {
                "epochs": 1,
                "batch_size": BATCH,
                "learning_rate": LR,
                "warmup_ratio": WARMUP,
                "weight_decay": 0.0,
                "seed": SEED,
            },
        },
        source="benchmark",
    )
    result = run_training(
        config, settings=Settings(data_dir=work / "state", results_dir=work / "results")
    )
    return {
        "seconds": result.metrics["train"]["train_only_s"],
        "accuracy": result.metrics["final"]["accuracy"],
        "precision": result.metrics["precision"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--eval-size", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = select_device("auto")
    # Measured first, before any training has warmed or loaded the machine.
    peaks = {
        "fp32": matmul_flops_per_second(torch.float32, device),
        "bf16": matmul_flops_per_second(torch.bfloat16, device),
    }
    if device == "cuda":
        peaks["fp16"] = matmul_flops_per_second(torch.float16, device)
    source = resolve_base_model("minilm-l6").path_or_id
    tokenizer = AutoTokenizer.from_pretrained(source)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = write_demo(work / "data", train_size=args.train_size, eval_size=args.eval_size)
        train, evaluation = pd.read_csv(files.train), pd.read_csv(files.eval)
        labels = sorted(set(train["label"]))
        real_tokens = sum(
            len(ids)
            for ids in tokenizer(list(train["text"]), truncation=True, max_length=MAX_LENGTH)[
                "input_ids"
            ]
        )
        mean_length = real_tokens / len(train)

        print(
            f"device {device}, {len(train)} train / {len(evaluation)} eval rows, mean length {mean_length:.1f} tokens",
            flush=True,
        )
        runs = {}
        print("running loraforge ...", flush=True)
        runs["loraforge"] = loraforge_path(files.train, files.eval, work)
        gc.collect()
        print("running plain Trainer ...", flush=True)
        runs["plain Trainer"] = plain_trainer(source, tokenizer, train, evaluation, labels, work)
        gc.collect()
        print("running hand loop (pad to max_length) ...", flush=True)
        runs["hand loop"] = hand_loop(source, tokenizer, train, evaluation, labels, device)

    flops_per_token = training_flops_per_token(runs["plain Trainer"]["model"], mean_length)
    baseline = runs["plain Trainer"]
    rows = []
    for name, run in runs.items():
        samples_s = len(train) / run["seconds"]
        tokens_s = real_tokens / run["seconds"]
        mfu = tokens_s * flops_per_token / peaks[run["precision"]]
        rows.append(
            {
                "path": name,
                "precision": run["precision"],
                "train_s": round(run["seconds"], 2),
                "samples_per_s": round(samples_s, 1),
                "tokens_per_s": round(tokens_s, 0),
                "eval_accuracy": round(run["accuracy"], 4),
                "speedup_vs_trainer": round(baseline["seconds"] / run["seconds"], 2),
                "accuracy_delta_points": round(100 * (run["accuracy"] - baseline["accuracy"]), 1),
                "mfu": round(mfu, 4),
            }
        )
    print()
    print(
        "matmul peak measured: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items())
    )
    print(f"model FLOPs per real token (LoRA training): {flops_per_token / 1e6:.1f} MFLOP")
    header = f"{'path':<15}{'prec':<6}{'train s':>9}{'samples/s':>11}{'tokens/s':>10}{'accuracy':>10}{'speedup':>9}{'Δacc pts':>9}{'MFU':>8}"
    print(header)
    for r in rows:
        print(
            f"{r['path']:<15}{r['precision']:<6}{r['train_s']:>9.1f}{r['samples_per_s']:>11.1f}{r['tokens_per_s']:>10.0f}"
            f"{r['eval_accuracy']:>10.4f}{r['speedup_vs_trainer']:>8.2f}x{r['accuracy_delta_points']:>+9.1f}{r['mfu']:>8.1%}"
        )
    ours = rows[0]
    verdict = ours["speedup_vs_trainer"] >= 1.2 and abs(ours["accuracy_delta_points"]) <= 1.0
    print(
        f"\ntarget loraforge >= 1.2x the plain Trainer at equal accuracy (±1 point): {'met' if verdict else 'NOT met'}"
    )
    if args.json:
        args.json.write_text(json.dumps({"device": device, "peaks": peaks, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
