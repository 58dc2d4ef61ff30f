"""The data's language and the tokenizer's coverage, before a run spends the user's time.

A tiny random BERT whose tokenizer was trained on English only stands for the bundled
English MiniLM: on Chinese (or mixed) data the run warns with the figure and refuses
unless forced; a tokenizer trained on both reads it and says nothing. `auto` picks the
catalog model for the language.
"""

from __future__ import annotations

import random

import pandas as pd
import pytest
from conftest import build_tiny_bert, make_texts
from test_api import auth, client, people, settings, upload  # noqa: F401  (fixtures)

from loraforge.data.coverage import tokenizer_coverage
from loraforge.errors import ConfigError
from loraforge.training.language_check import check_language

GOOD = ["很好", "喜欢", "满意", "推荐", "质量不错", "物流很快", "漂亮", "值得购买"]
BAD = ["太差", "失望", "坏了", "退货", "质量很差", "物流太慢", "不值", "再也不买"]
FILLER = ["这个", "产品", "东西", "包装", "价格", "客服", "用了", "两天", "感觉", "真的"]


def chinese_reviews(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        label = "positive" if i % 2 else "negative"
        words = rng.sample(FILLER, 3) + rng.sample(GOOD if label == "positive" else BAD, 2)
        rng.shuffle(words)
        out.append(
            {"text": "\uff0c".join(words) + "\u3002", "label": label}
        )  # Chinese comma and full stop
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def bilingual_model_dir(tmp_path_factory):
    """The same tiny BERT, its tokenizer trained on English and Chinese."""
    corpus = [*make_texts(200)["text"], *chinese_reviews(200, seed=9)["text"]]
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bilingual"), corpus, vocab_size=500)


def test_an_english_tokenizer_on_chinese_data_is_refused_with_the_figure_and_a_way_out(
    tiny_model_dir,
):
    texts = chinese_reviews(60)["text"].tolist()
    with pytest.raises(ConfigError) as refused:
        check_language(texts, str(tiny_model_dir))
    error = refused.value
    assert "cannot read" in error.message and "% of the training text" in error.message
    assert "Chinese" in error.message  # what the data is
    assert "bert-base-chinese" in error.hint and "model.allow_low_coverage: true" in error.hint
    assert error.field == "model.base_model"
    # Forced: the run goes on, and the warning keeps the figure.
    forced = check_language(texts, str(tiny_model_dir), allow_low_coverage=True)
    assert forced.language.dominant == "zh"
    assert forced.coverage is not None and forced.coverage.unread_share > 0.5
    assert forced.warnings and "bert-base-chinese" in forced.warnings[0]


def test_a_mixed_set_names_both_languages_and_is_refused_on_an_english_tokenizer(tiny_model_dir):
    texts = [*chinese_reviews(42)["text"], *make_texts(18, seed=4)["text"]]
    with pytest.raises(ConfigError) as refused:
        check_language(texts, str(tiny_model_dir))
    assert "Chinese" in refused.value.message and "English" in refused.value.message


def test_a_tokenizer_that_reads_the_data_gives_no_warning(tiny_model_dir, bilingual_model_dir):
    chinese = chinese_reviews(60)["text"].tolist()
    english = make_texts(60, seed=2)["text"].tolist()
    assert check_language(chinese, str(bilingual_model_dir)).warnings == []
    assert check_language(english, str(tiny_model_dir)).warnings == []
    coverage = tokenizer_coverage(tiny_model_dir, english)
    assert coverage.unread_share < 0.02 and coverage.sampled == 60


def test_auto_chooses_the_catalog_model_of_the_language():
    english = make_texts(60, seed=3)["text"].tolist()
    assert check_language(english, "auto").base_model == "minilm-l6"
    chosen = check_language(chinese_reviews(60)["text"].tolist(), "auto")
    assert chosen.base_model == "bert-base-chinese" and chosen.chosen_automatically
    german = [
        "Das Essen war wirklich ausgezeichnet und der Service sehr freundlich.",
        "Leider kam das Paket beschädigt an, ich bin sehr enttäuscht.",
        "Ich würde dieses Produkt jederzeit wieder kaufen.",
        "Die Lieferung hat viel zu lange gedauert.",
    ] * 10
    from loraforge.models.catalog import default_for_language

    assert check_language(german, "auto").base_model == default_for_language("de").name
    assert default_for_language("de").name not in ("minilm-l6", "bert-base-chinese")


def test_the_api_records_the_language_and_refuses_a_job_the_model_cannot_read(
    client,  # noqa: F811
    people,  # noqa: F811
    tiny_model_dir,
):
    alice = auth(client, "alice")
    content = chinese_reviews(60).to_csv(index=False).encode()
    uploaded = upload(client, alice, name="reviews_zh.csv", content=content)
    assert uploaded.status_code == 201, uploaded.text
    dataset = uploaded.json()
    assert dataset["language"] == "zh" and dataset["languages"]["shares"]["zh"] > 0.9
    # What the New job page shows before anything runs.
    seen = client.get(
        f"/datasets/{dataset['id']}/language",
        headers=alice,
        params={"base_model": str(tiny_model_dir)},
    )
    assert seen.status_code == 200, seen.text
    assert seen.json()["refused"] and seen.json()["coverage"]["unread_share"] > 0.5
    auto = client.get(f"/datasets/{dataset['id']}/language", headers=alice).json()
    assert auto["base_model"] == "bert-base-chinese" and auto["chosen_automatically"]
    body = {
        "experiment_name": "zh",
        "model": {"base_model": str(tiny_model_dir), "device": "cpu"},
        "data": {"dataset_id": dataset["id"], "eval_split": 0.2, "max_length": 32},
        "training": {"epochs": 1, "precision": "fp32"},
    }
    refused = client.post("/train", headers=alice, json=body)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert "cannot read" in problem["detail"] and "allow_low_coverage" in problem["hint"]
    assert client.get("/tasks", headers=alice).json()["data"] == []  # nothing queued


def test_cli_train_refuses_before_recording_anything(env_settings, tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from loraforge.cli import app
    from loraforge.tracking import experiments

    chinese_reviews(60).to_csv(tmp_path / "zh.csv", index=False)
    (tmp_path / "zh.yaml").write_text(
        f"experiment_name: zh\nmodel:\n  base_model: {tiny_model_dir}\n  device: cpu\n"
        f"data:\n  train_file: {tmp_path / 'zh.csv'}\n  max_length: 32\n"
        "training:\n  epochs: 1\n  precision: fp32\n"
    )
    url = env_settings.resolved_database_url()
    before = {e.id for e in experiments.list_experiments(url, limit=10_000)}
    result = CliRunner().invoke(app, ["train", str(tmp_path / "zh.yaml")])
    assert result.exit_code == 2, result.output
    assert "cannot read" in result.output and "allow_low_coverage" in result.output
    assert {e.id for e in experiments.list_experiments(url, limit=10_000)} == before
    validated = CliRunner().invoke(
        app, ["data", "validate", str(tmp_path / "zh.csv"), "--model", str(tiny_model_dir)]
    )
    assert validated.exit_code == 0, validated.output
    assert "language Chinese" in validated.output and "cannot read" in validated.output


def test_data_analyze_reports_language_and_coverage(tiny_model_dir, bilingual_model_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from loraforge.cli import app

    chinese_reviews(60).to_csv(tmp_path / "zh.csv", index=False)

    def analyze(model) -> dict:
        args = ["data", "analyze", str(tmp_path / "zh.csv"), "--model", str(model), "--json"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    english = analyze(tiny_model_dir)
    assert english["language"]["dominant"] == "zh" and english["language"]["shares"]["zh"] > 0.9
    assert english["coverage"]["unread_share"] > 0.15
    assert any("cannot read" in w for w in english["warnings"])
    both = analyze(bilingual_model_dir)
    assert both["coverage"]["unread_share"] < 0.02 and both["warnings"] == []
    shown = CliRunner().invoke(
        app, ["data", "analyze", str(tmp_path / "zh.csv"), "--model", str(tiny_model_dir)]
    )
    assert "language Chinese 100 %" in shown.output and "warning:" in shown.output
