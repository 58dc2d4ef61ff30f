"""One LoRA fine-tuning run, from a validated config to a tracked experiment.

The run writes into ``results/<id>.partial/`` and renames it to ``results/<id>/`` only
when everything is in place; a failed run ends as ``results/<id>.failed/`` (config,
logs and the reason, no model), so no half-written folder ever looks like a success.
The database row and the MLflow run record the same outcome.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from loraforge.config import TrainConfig
from loraforge.errors import Cancelled, ConfigError, LoraforgeError, TrainingError
from loraforge.models.artifacts import ModelMeta, write_model_meta
from loraforge.models.catalog import ResolvedModel, resolve_base_model
from loraforge.settings import Settings, get_settings
from loraforge.tracking import experiments
from loraforge.tracking.mlflow_bridge import MlflowRun
from loraforge.training.checkpoints import Checkpoint, Retention, apply_retention
from loraforge.training.inputs import RunInputs, prepare_inputs
from loraforge.training.language_check import LanguageCheck, check_language
from loraforge.training.progress import ProgressReporter, SilentReporter
from loraforge.training.run_logging import run_log_file

logger = logging.getLogger("loraforge.training")

PACKAGES = ("loraforge", "torch", "transformers", "peft", "accelerate", "mlflow")


@dataclass(frozen=True)
class TrainingResult:
    experiment_id: str
    results_dir: Path
    metrics: dict[str, Any]
    mlflow_run_id: str | None


def new_experiment_id(name: str, results_root: Path, db_url: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{name}-{stamp}"
    candidate, n = base, 1
    while _taken(candidate, results_root, db_url):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _taken(candidate: str, root: Path, db_url: str) -> bool:
    if any((root / f"{candidate}{suffix}").exists() for suffix in ("", ".partial", ".failed")):
        return True
    return experiments.id_in_use(db_url, candidate)


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def describe_failure(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted by the user"
    if isinstance(error, LoraforgeError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _as_user_error(error: BaseException) -> BaseException:
    """Known failure kinds become typed errors with a hint; anything else stays as it is."""
    import torch

    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return TrainingError(
            "training ran out of memory",
            hint="Lower training.batch_size or data.max_length, or raise "
            "training.gradient_accumulation_steps to keep the effective batch.",
        )
    return error


def run_training(
    config: TrainConfig,
    *,
    settings: Settings | None = None,
    reporter: ProgressReporter | None = None,
    experiment_id: str | None = None,
    owner_id: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Run one experiment. With ``experiment_id`` of a run that was interrupted (a job whose
    worker died), the same folder, row and MLflow run are reused and training resumes from
    the last checkpoint. ``should_stop`` is polled every step; True cancels the run."""
    settings = settings or get_settings()
    reporter = reporter or SilentReporter()
    db_url = settings.resolved_database_url()
    root = settings.resolved_results_dir()
    root.mkdir(parents=True, exist_ok=True)
    experiment_id = experiment_id or new_experiment_id(config.experiment_name, root, db_url)
    partial = root / f"{experiment_id}.partial"
    partial.mkdir(exist_ok=True)
    (partial / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    if experiments.find(db_url, experiment_id) is None:
        experiments.create(
            db_url,
            id=experiment_id,
            name=config.experiment_name,
            base_model=config.model.base_model,
            config=config.model_dump(mode="json"),
            results_dir=str(partial),
            owner_id=owner_id,
        )
    else:
        experiments.update(
            db_url, experiment_id, status=experiments.RUNNING, error=None, finished_at=None
        )
    mlflow_run: MlflowRun | None = None
    try:
        with run_log_file(partial / "logs.txt"):
            try:
                mlflow_run = MlflowRun(
                    tracking_uri=settings.resolved_mlflow_tracking_uri(),
                    artifact_root=settings.resolved_mlflow_artifact_root(),
                    experiment_name=config.experiment_name,
                )
                inputs = prepare_inputs(config)
                # The data's language, `auto` resolved, and the tokenizer's coverage of
                # the data: checked again here (a worker's job was checked by the API).
                found = check_language(
                    inputs.train["text"].tolist(),
                    config.model.base_model,
                    allow_low_coverage=config.model.allow_low_coverage,
                )
                config = config.model_copy(
                    update={
                        "model": config.model.model_copy(update={"base_model": found.base_model})
                    }
                )
                (partial / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
                resolved = resolve_base_model(found.base_model)
                metrics = _run(
                    config,
                    reporter,
                    experiment_id,
                    partial,
                    inputs,
                    resolved,
                    db_url,
                    mlflow_run,
                    should_stop,
                    found,
                )
            except BaseException as error:
                logger.error("run %s failed: %s", experiment_id, describe_failure(error))
                raise
    except Cancelled:
        # A cancelled job leaves nothing behind: no folder, a row saying so.
        shutil.rmtree(partial, ignore_errors=True)
        experiments.mark_cancelled(db_url, experiment_id)
        if mlflow_run is not None:
            mlflow_run.finish(succeeded=False)
        raise
    except BaseException as error:
        user_error = _as_user_error(error)
        reason = describe_failure(user_error)
        failed = root / f"{experiment_id}.failed"
        shutil.rmtree(partial / "artifacts", ignore_errors=True)
        (partial / "error.txt").write_text(reason + "\n", encoding="utf-8")
        # An earlier attempt of the same job (retried after a transient error) may have
        # failed too: this failure is the one that tells, and rename() cannot replace a
        # folder that is not empty.
        shutil.rmtree(failed, ignore_errors=True)
        partial.rename(failed)
        experiments.mark_failed(db_url, experiment_id, error=reason, results_dir=str(failed))
        if mlflow_run is not None:
            mlflow_run.finish(succeeded=False)
        if user_error is error:
            raise
        raise user_error from error

    final = root / experiment_id
    mlflow_run.log_artifact(partial / "logs.txt")
    partial.rename(final)
    experiments.mark_succeeded(db_url, experiment_id, metrics=metrics, results_dir=str(final))
    mlflow_run.finish(succeeded=True)
    return TrainingResult(experiment_id, final, metrics, mlflow_run.run_id)


def _run(
    config: TrainConfig,
    reporter: ProgressReporter,
    experiment_id: str,
    folder: Path,
    inputs: RunInputs,
    resolved: ResolvedModel,
    db_url: str,
    mlflow_run: MlflowRun,
    should_stop: Callable[[], bool] | None,
    found: LanguageCheck,
) -> dict[str, Any]:
    # Heavy imports live here so that `loraforge --help` and the API never load torch.
    from loraforge.models.device import select_device, select_precision

    device = select_device(config.model.device)
    precision = select_precision(config.training.precision, device)
    # The language of the model is its training data's (the catalog's only as a
    # fallback): a Chinese model is Chinese whatever base it was trained on.
    language = found.language.dominant or resolved.language
    experiments.update(
        db_url,
        experiment_id,
        base_model=config.model.base_model,
        language=language,
        device=device,
        train_dataset_version=inputs.train_version,
        eval_dataset_version=inputs.eval_version,
        train_rows=len(inputs.train),
        eval_rows=len(inputs.eval),
        labels=inputs.labels,
    )
    logger.info(
        "experiment %s: base model %s (%s), device %s, precision %s, %d train / %d eval rows, labels %s",
        experiment_id,
        resolved.name,
        resolved.path_or_id,
        device,
        precision,
        len(inputs.train),
        len(inputs.eval),
        inputs.labels,
    )
    logger.info(
        "training data language: %s; base model %s%s%s",
        found.language.words(),
        config.model.base_model,
        " (auto)" if found.chosen_automatically else "",
        f", {found.coverage.words()}" if found.coverage else "",
    )
    warnings = [*inputs.train_warnings, *found.warnings]
    for warning in warnings:
        logger.warning("training data: %s", warning)
    reporter.data_warnings(messages=warnings)
    previous_run = experiments.get(db_url, experiment_id).mlflow_run_id
    if previous_run:
        run_id = mlflow_run.resume(previous_run)
    else:
        run_id = mlflow_run.start(
            run_name=experiment_id,
            params=config.flat(),
            tags={
                "loraforge.experiment_id": experiment_id,
                "loraforge.train_dataset_version": inputs.train_version,
                "loraforge.eval_dataset_version": inputs.eval_version,
                "loraforge.device": device,
                "loraforge.precision": precision,
            },
        )
    experiments.update(db_url, experiment_id, mlflow_run_id=run_id)
    metrics = _fine_tune(
        config,
        reporter,
        experiment_id,
        folder,
        inputs,
        resolved,
        device,
        precision,
        mlflow_run,
        should_stop,
        language,
    )
    mlflow_run.log_metrics(
        {f"final_{k}": v for k, v in metrics["final"].items() if isinstance(v, float)},
        step=metrics["train"]["steps"],
    )
    quality = metrics["quality"]
    mlflow_run.set_tags({"loraforge.learned": str(quality["learned"]).lower()})
    mlflow_run.log_artifact(folder / "config.yaml")
    mlflow_run.log_artifact(folder / "metrics.json")
    mlflow_run.log_artifacts(folder / "artifacts" / "final_model", artifact_path="final_model")
    return metrics


def _fine_tune(
    config: TrainConfig,
    reporter: ProgressReporter,
    experiment_id: str,
    folder: Path,
    inputs: RunInputs,
    resolved: ResolvedModel,
    device: str,
    precision: str,
    mlflow_run,
    should_stop: Callable[[], bool] | None,
    language: str,
) -> dict[str, Any]:
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed
    from transformers.trainer_callback import PrinterCallback

    from loraforge.models.loading import load_classifier
    from loraforge.models.lora_targets import default_target_modules
    from loraforge.training.callbacks import (
        ReportingCallback,
        StopCallback,
        ThroughputCallback,
        epoch_history,
    )
    from loraforge.training.dataset import TokenizedExamples
    from loraforge.training.metrics import (
        classification_metrics,
        compute_metrics_for,
        confusion_matrix,
    )
    from loraforge.training.quality import assess

    training = config.training
    set_seed(training.seed)
    tokenizer, model = load_classifier(resolved, inputs.labels)
    targets = config.lora.target_modules or default_target_modules(model.config.model_type)
    try:
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS,
                r=config.lora.r,
                lora_alpha=config.lora.alpha,
                lora_dropout=config.lora.dropout,
                target_modules=targets,
            ),
        )
    except ValueError as error:
        raise ConfigError(
            f"lora.target_modules {targets!r} do not fit {resolved.name}: {str(error).splitlines()[0]}",
            hint="Leave lora.target_modules null for the architecture's default.",
        ) from None
    trainable, total = model.get_nb_trainable_parameters()
    resolved_config = config.model_copy(
        update={
            "data": config.data.model_copy(
                update={"train_file": inputs.train_file, "eval_file": inputs.eval_file}
            ),
            "lora": config.lora.model_copy(update={"target_modules": targets}),
        }
    )
    (folder / "config.yaml").write_text(resolved_config.to_yaml(), encoding="utf-8")

    max_length = config.data.max_length
    train_set = TokenizedExamples(
        inputs.train["text"], inputs.ids(inputs.train), tokenizer, max_length=max_length
    )
    eval_set = TokenizedExamples(
        inputs.eval["text"], inputs.ids(inputs.eval), tokenizer, max_length=max_length
    )
    checkpoints_dir = folder / "artifacts" / "checkpoints"
    metric_key = f"eval_{training.metric_for_best}"
    args = TrainingArguments(
        output_dir=str(checkpoints_dir),
        num_train_epochs=training.epochs,
        per_device_train_batch_size=training.batch_size,
        per_device_eval_batch_size=training.eval_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        learning_rate=training.learning_rate,
        # transformers 5: a warmup_steps value below 1 is a ratio of the total steps.
        warmup_steps=training.warmup_ratio,
        weight_decay=training.weight_decay,
        seed=training.seed,
        data_seed=training.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model=metric_key,
        greater_is_better=True,
        logging_strategy="steps",
        # A run shorter than logging_steps would never show a loss: log at least once an epoch.
        logging_steps=min(training.logging_steps, _steps_per_epoch(len(train_set), training)),
        train_sampling_strategy="group_by_length" if training.group_by_length else "random",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        dataloader_pin_memory=device == "cuda",
        report_to="none",
        disable_tqdm=True,
    )
    reporting = ReportingCallback(
        experiment_id=experiment_id, reporter=reporter, mlflow_run=mlflow_run
    )
    throughput = ThroughputCallback(
        reporter,
        samples_per_step=args.train_batch_size * args.gradient_accumulation_steps,
        tokens_per_sample=train_set.token_count / max(1, len(train_set)),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(
            tokenizer, pad_to_multiple_of=8 if device == "cuda" else None
        ),
        compute_metrics=compute_metrics_for(len(inputs.labels)),
        callbacks=[reporting, throughput, *([StopCallback(should_stop)] if should_stop else [])],
    )
    # With tqdm off, the Trainer prints every log dict to stdout; our reporter shows progress.
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    resume_from = latest_checkpoint(checkpoints_dir)
    if resume_from is not None:
        logger.info("resuming from %s", resume_from.name)
    try:
        train_output = trainer.train(
            resume_from_checkpoint=str(resume_from) if resume_from else None
        )
    finally:
        reporter.finished()
    history = epoch_history(trainer.state.log_history)
    wall_seconds = time.perf_counter() - started

    prediction = trainer.predict(eval_set)
    predicted = prediction.predictions.argmax(axis=-1)
    final = classification_metrics(prediction.label_ids, predicted, len(inputs.labels))
    final["loss"] = float(prediction.metrics.get("test_loss", float("nan")))
    matrix = confusion_matrix(prediction.label_ids, predicted, len(inputs.labels))

    retention = _retain_checkpoints(history, checkpoints_dir, metric_key)
    final_dir = folder / "artifacts" / "final_model"
    model.save_pretrained(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))
    write_model_meta(
        final_dir,
        ModelMeta(
            experiment_id=experiment_id,
            base_model=config.model.base_model,
            base_model_source=resolved.path_or_id,
            language=language,
            max_length=max_length,
            labels=inputs.labels,
        ),
    )
    epochs_run = float(train_output.metrics.get("epoch", training.epochs))
    train_seconds = throughput.train_seconds or wall_seconds
    epochs_this_attempt = epochs_run - throughput.start_epoch
    samples_seen = len(train_set) * epochs_this_attempt
    quality = assess(
        labels=inputs.labels,
        matrix=matrix.tolist(),
        train_rows=len(inputs.train),
        epochs=epochs_run,
        learning_rate=training.learning_rate,
        capped=training.max_train_samples is not None,
        data_warnings=list(inputs.train_warnings),
    )
    metrics: dict[str, Any] = {
        "experiment_id": experiment_id,
        "final": {**final, "checkpoint": retention.best.path.name},
        "quality": quality,
        "confusion_matrix": {"labels": inputs.labels, "matrix": matrix.tolist()},
        "history": history,
        "train": {
            "epochs": epochs_run,
            "steps": int(train_output.global_step),
            "train_loss": float(train_output.training_loss),
            "runtime_s": round(wall_seconds, 3),
            "train_only_s": round(train_seconds, 3),
            "samples_per_second": round(samples_seen / train_seconds, 3),
            "tokens_per_second": round(
                train_set.token_count * epochs_this_attempt / train_seconds, 1
            ),
            "resumed_from_epoch": throughput.start_epoch or None,
        },
        "parameters": {
            "trainable": int(trainable),
            "total": int(total),
            "trainable_share": round(trainable / total, 6),
        },
        "datasets": {
            "train": {
                "version": inputs.train_version,
                "file": str(inputs.train_file),
                "rows": len(inputs.train),
                "warnings": list(inputs.train_warnings),
            },
            "eval": {
                "version": inputs.eval_version,
                "file": str(inputs.eval_file) if inputs.eval_file else None,
                "split": config.data.effective_eval_split(),
                "rows": len(inputs.eval),
            },
        },
        "labels": inputs.labels,
        "base_model": {
            "name": resolved.name,
            "source": resolved.path_or_id,
            "language": resolved.language,
        },
        "language": language,
        "device": device,
        "precision": precision,
        "checkpoints": retention.roles(),
        "packages": package_versions(),
    }
    (folder / "metrics.json").write_text(
        json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    logger.info(
        "done: accuracy %.4f, macro-F1 %.4f, %.1f samples/s; kept checkpoints %s",
        final["accuracy"],
        final["f1_macro"],
        metrics["train"]["samples_per_second"],
        ", ".join(f"{role}={c['checkpoint']}" for role, c in retention.roles().items()),
    )
    if not quality["learned"]:
        logger.warning(
            "the model did not learn: %s %s", " ".join(quality["problems"]), quality["hint"]
        )
    return metrics


def _steps_per_epoch(rows: int, training) -> int:
    per_step = training.batch_size * training.gradient_accumulation_steps
    return max(1, -(-rows // per_step))


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    """The newest complete checkpoint of an interrupted run, if any."""
    if not checkpoints_dir.is_dir():
        return None
    found = [
        p
        for p in checkpoints_dir.glob("checkpoint-*")
        if p.name.removeprefix("checkpoint-").isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(found, key=lambda p: int(p.name.removeprefix("checkpoint-")), default=None)


def _retain_checkpoints(
    history: list[dict[str, float]], checkpoints_dir: Path, metric_key: str
) -> Retention:
    found = [
        Checkpoint(
            path=checkpoints_dir / f"checkpoint-{int(entry['step'])}",
            step=int(entry["step"]),
            epoch=float(entry["epoch"]),
            metric=float(entry[metric_key]),
        )
        for entry in history
        if metric_key in entry and (checkpoints_dir / f"checkpoint-{int(entry['step'])}").is_dir()
    ]
    retention = apply_retention(found)
    (checkpoints_dir / "retention.json").write_text(
        json.dumps(retention.roles(), indent=2), encoding="utf-8"
    )
    return retention
