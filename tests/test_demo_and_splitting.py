import pandas as pd
import pytest

from loraforge.data.demo import write_demo
from loraforge.data.splitting import stratified_split
from loraforge.data.validation import validate_file
from loraforge.errors import DatasetError


def test_stratified_split_keeps_class_shares():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": ["a"] * 80 + ["b"] * 20})
    train, test = stratified_split(frame, test_fraction=0.25, seed=1)
    assert len(train) + len(test) == 100
    assert test["label"].value_counts().to_dict() == {"a": 20, "b": 5}
    assert not set(train["text"]) & set(test["text"])


def test_demo_is_stratified_deterministic_and_valid(tmp_path):
    first = write_demo(tmp_path / "one", train_size=200, eval_size=100)
    second = write_demo(tmp_path / "two", train_size=200, eval_size=100)
    assert (first.train_rows, first.eval_rows) == (200, 100)
    report = validate_file(first.train)
    assert report.ok
    assert report.version == validate_file(second.train).version
    train, evaluation = pd.read_csv(first.train), pd.read_csv(first.eval)
    assert set(train["label"]) == {"positive", "negative"}
    assert not set(train["text"]) & set(evaluation["text"])
    share = (train["label"] == "positive").mean()
    assert share == pytest.approx((evaluation["label"] == "positive").mean(), abs=0.02)


def test_demo_three_classes(tmp_path):
    files = write_demo(
        tmp_path, classes=("positive", "negative", "neutral"), train_size=90, eval_size=30
    )
    assert set(pd.read_csv(files.train)["label"]) == {"positive", "negative", "neutral"}


def test_demo_refuses_unknown_class(tmp_path):
    with pytest.raises(DatasetError, match="--classes"):
        write_demo(tmp_path, classes=("positive", "angry"))
