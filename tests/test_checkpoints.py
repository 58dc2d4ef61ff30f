from pathlib import Path

import pytest

from loraforge.training.checkpoints import Checkpoint, apply_retention, choose


def checkpoints(root: Path, metrics: list[float]) -> list[Checkpoint]:
    found = []
    for epoch, metric in enumerate(metrics, start=1):
        path = root / f"checkpoint-{epoch * 10}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "adapter_model.safetensors").write_bytes(b"x")
        found.append(Checkpoint(path=path, step=epoch * 10, epoch=float(epoch), metric=metric))
    return found


def test_best_last_and_fastest_are_kept_the_rest_deleted(tmp_path):
    found = checkpoints(tmp_path, [0.70, 0.846, 0.85, 0.83, 0.80])
    retention = apply_retention(found)
    assert retention.best.step == 30
    assert retention.last.step == 50
    # 0.846 is within 0.5 points of 0.85, and earlier.
    assert retention.fastest.step == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-20",
        "checkpoint-30",
        "checkpoint-50",
    ]


def test_fastest_needs_to_be_within_half_a_point(tmp_path):
    retention = choose(checkpoints(tmp_path, [0.80, 0.844, 0.85]))
    assert retention.fastest.step == 30  # 0.844 is 0.6 points short


def test_ties_go_to_the_earlier_checkpoint(tmp_path):
    retention = choose(checkpoints(tmp_path, [0.9, 0.9, 0.9]))
    assert (retention.best.step, retention.fastest.step, retention.last.step) == (10, 10, 30)


def test_roles_record_which_is_which(tmp_path):
    roles = choose(checkpoints(tmp_path, [0.5, 0.6])).roles()
    assert roles["best"]["checkpoint"] == "checkpoint-20"
    assert set(roles) == {"best", "last", "fastest"}


def test_no_checkpoints_is_an_error():
    with pytest.raises(ValueError):
        choose([])
