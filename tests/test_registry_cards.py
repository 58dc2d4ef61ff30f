"""Model cards: facts from a real (tiny) run, the JSON schema, the Hugging Face README."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import yaml

from loraforge.registry import cards
from loraforge.tracking import experiments

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def record(tiny_run, shared_settings):
    return experiments.get(shared_settings.resolved_database_url(), tiny_run.experiment_id)


def card_of(facts: cards.Facts, **overrides) -> dict:
    values = {
        "name": "sentiment",
        "version": 3,
        "stage": "Production",
        "owner": "alice",
        "created_at": NOW,
        "updated_at": NOW,
        "description": "Airline tweets",
        "task": "sentiment",
        "tags": {"license": "apache-2.0", "team": "nlp"},
        "mlflow_version": "7",
        "intended_use": None,
        "limitations": None,
        "embedding": [0.0, 1.0],
        **overrides,
    }
    return cards.build_card(facts, **values)


def split_readme(readme: str) -> tuple[dict, str]:
    assert readme.startswith("---\n")
    header, body = readme[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def test_a_runs_card_has_every_fact_and_fits_the_schema(record, tiny_run):
    facts = cards.experiment_facts(record)
    card = card_of(facts)
    assert cards.problems(card) == []
    assert card["labels"] == [
        {"name": "negative", "train_count": 48, "eval_count": 16},
        {"name": "positive", "train_count": 48, "eval_count": 16},
    ]
    matrix = tiny_run.metrics["confusion_matrix"]["matrix"]
    assert card["confusion_matrix"] == {"labels": ["negative", "positive"], "matrix": matrix}
    for i, row in enumerate(card["per_class"]):
        predicted = matrix[0][i] + matrix[1][i]
        assert row["support"] == sum(matrix[i])
        assert row["precision"] == pytest.approx(
            matrix[i][i] / predicted if predicted else 0, abs=1e-4
        )
    assert card["metrics"]["f1_macro"] == pytest.approx(tiny_run.metrics["final"]["f1_macro"])
    assert card["data"]["train"] == {"version": record.train_dataset_version, "rows": 96}
    assert card["data"]["eval"]["rows"] == 32
    assert (card["lora"]["r"], card["lora"]["alpha"], card["lora"]["dropout"]) == (4, 8, 0.1)
    assert card["lora"]["target_modules"]  # the architecture's default, resolved
    assert card["parameters"]["trainable"] == tiny_run.metrics["parameters"]["trainable"]
    assert card["training"]["seed"] == 42 and card["training"]["max_length"] == 32
    assert {"torch", "transformers", "peft", "loraforge"} <= set(card["packages"])
    assert (card["experiment_id"], card["mlflow_run_id"]) == (record.id, tiny_run.mlflow_run_id)
    # A local base model is named by its folder, never by its server path.
    assert card["base_model"] == record.base_model.rsplit("/", 1)[-1]
    assert "/" not in card["base_model"]
    # The experiment's language is its training data's: English here.
    assert card["intended_use"] == (
        "Classifies English short texts (sentiment) into: negative, positive."
    )
    assert "Evaluated on 32 held-out texts" in card["limitations"]
    assert "longer than 32 tokens" in card["limitations"]
    learned = tiny_run.metrics["quality"]["learned"]
    assert ("did not learn" in card["limitations"]) is (learned is False)
    # The data embedding's sample: the training texts (all 96: fewer than the cap).
    assert len(facts.sample_texts) == 96 and facts.label_names == ["negative", "positive"]


def test_the_trainable_count_can_come_from_the_adapter_file(record, tiny_run):
    model_dir = tiny_run.results_dir / "artifacts" / "final_model"
    assert cards._adapter_parameters(model_dir) == tiny_run.metrics["parameters"]["trainable"]
    metrics = {k: v for k, v in record.metrics.items() if k != "parameters"}
    older = dataclasses.replace(record, metrics=metrics)
    counted = cards.experiment_facts(older).card["parameters"]["trainable"]
    assert counted == tiny_run.metrics["parameters"]["trainable"]


def test_without_the_training_file_the_card_says_less_but_no_less_validly(record, tmp_path):
    config = {
        **record.config,
        "data": {**record.config["data"], "train_file": str(tmp_path / "gone.csv")},
    }
    moved = dataclasses.replace(record, results_dir=str(tmp_path), config=config)
    facts = cards.experiment_facts(moved)
    assert facts.sample_texts == []
    assert [label["train_count"] for label in facts.card["labels"]] == [None, None]
    assert [label["eval_count"] for label in facts.card["labels"]] == [16, 16]  # from the matrix
    assert cards.problems(card_of(facts)) == []

    bare = dataclasses.replace(
        record, metrics=None, config={}, labels=None, results_dir="", language="en"
    )
    card = card_of(cards.experiment_facts(bare), tags={})
    assert cards.problems(card) == []
    assert card["per_class"] == [] and card["confusion_matrix"] is None
    assert card["intended_use"] == "Classifies English short texts (sentiment) into: its labels."
    assert "Trained on English texts" in card["limitations"]


def test_the_readme_is_a_hugging_face_model_card(record):
    facts = cards.experiment_facts(dataclasses.replace(record, language="en"))
    card = card_of(facts)
    header, body = split_readme(cards.render_readme(card))
    assert header["language"] == ["en"] and header["license"] == "apache-2.0"
    assert (header["library_name"], header["pipeline_tag"]) == ("peft", "text-classification")
    assert header["base_model"] == card["base_model"]
    assert {"loraforge", "lora", "sentiment", "team:nlp"} <= set(header["tags"])
    assert header["datasets"] == [
        record.train_dataset_version[:12],
        record.eval_dataset_version[:12],
    ]
    assert header["metrics"] == ["accuracy", "f1"]
    [entry] = header["model-index"]
    results = {m["type"]: m["value"] for m in entry["results"][0]["metrics"]}
    assert entry["name"] == "sentiment"
    assert results == {"accuracy": card["metrics"]["accuracy"], "f1": card["metrics"]["f1_macro"]}
    assert 'loraforge predict --model sentiment@production "a text to classify"' in body
    assert "| negative | 48 | 16 |" in body
    assert "### Per class" in body and "### Confusion matrix" in body
    assert "## Limitations" in body and card["limitations"] in body

    without_license = card_of(facts, tags={"team": "nlp"}, stage="Staging")
    header, body = split_readme(cards.render_readme(without_license))
    assert header["license"] == "other"
    assert '"model": "sentiment:3"' in body  # not Production: the version itself


def test_card_files_are_replaced_whole(record, tmp_path):
    card = cards.render(card_of(cards.experiment_facts(record)))
    json_path, readme_path = cards.write(tmp_path, card)
    assert json_path == tmp_path / "model_registry" / "sentiment" / "v3.json"
    assert readme_path.name == "v3.README.md"
    assert cards.read(tmp_path, "sentiment", 3) == card
    archived = cards.render(
        cards.refresh(
            card.data,
            stage="Archived",
            owner="alice",
            updated_at=NOW,
            mlflow_version="7",
            intended_use="Routing complaints.",
            limitations=None,
            embedding=None,
        )
    )
    cards.write(tmp_path, archived)
    again = cards.read(tmp_path, "sentiment", 3)
    assert again.data["stage"] == "Archived" and again.data["intended_use"] == "Routing complaints."
    assert again.data["labels"] == card.data["labels"]  # the facts stay
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["v3.README.md", "v3.json"]
    assert cards.read(tmp_path, "sentiment", 4) is None


def test_the_schema_catches_a_broken_card(record):
    card = card_of(cards.experiment_facts(record))
    broken = {**card, "stage": "Live", "labels": [{"name": "a"}]}
    del broken["embedding"]
    found = "\n".join(cards.problems(broken))
    assert "embedding" in found and "Live" in found and "train_count" in found
