"""Validation problems read as words, the same in the API, the CLI and the UI."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loraforge.api.schemas import TrainJobCreate
from loraforge.field_errors import field_problems, summary


def problems_of(body: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        TrainJobCreate.model_validate(body)
    found = field_problems(caught.value.errors(), model=TrainJobCreate)
    return {p.field: p.message for p in found}


def test_a_pattern_is_explained_in_words_not_as_a_regex():
    found = problems_of({"experiment_name": "my run!", "data": {"dataset_id": "d"}})
    message = found["experiment_name"]
    assert "^" not in message and "[" not in message
    assert "letters, digits, `.`, `_`, `-`" in message
    assert "at most 64 characters" in message


@pytest.mark.parametrize(
    ("training", "field", "message"),
    [
        ({"epochs": 0}, "training.epochs", "must be at least 1"),
        ({"epochs": "many"}, "training.epochs", "must be a whole number"),
        ({"learning_rate": 0}, "training.learning_rate", "must be greater than 0"),
        ({"precision": "int4"}, "training.precision", "must be one of: auto, fp32, bf16, fp16"),
        ({"group_by_length": "perhaps"}, "training.group_by_length", "must be true or false"),
        ({"epoch": 2}, "training.epoch", "is not a known field: did you mean `epochs`?"),
    ],
)
def test_each_kind_of_problem_has_words(training, field, message):
    found = problems_of(
        {"experiment_name": "ok", "data": {"dataset_id": "d"}, "training": training}
    )
    assert found[field] == message


def test_missing_fields_and_our_own_validators():
    assert problems_of({"experiment_name": "ok"}) == {"data": "is required"}
    both = problems_of(
        {
            "experiment_name": "ok",
            "data": {"dataset_id": "d", "eval_split": 0.1, "eval_dataset_id": "e"},
        }
    )
    assert both == {"data": "give either data.eval_dataset_id or data.eval_split, not both"}


def test_fastapi_locations_are_kept_apart_from_the_field():
    items = [
        {"type": "missing", "loc": ("body", "data", "dataset_id"), "msg": "Field required"},
        {"type": "int_parsing", "loc": ("query", "limit"), "msg": "Input should be ..."},
    ]
    found = field_problems(items)
    assert [(p.location, p.field, p.message) for p in found] == [
        ("body", "data.dataset_id", "is required"),
        ("query", "limit", "must be a whole number"),
    ]
    assert summary(found) == "data.dataset_id is required; limit must be a whole number"
