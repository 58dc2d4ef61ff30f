from pathlib import Path

import pytest
import yaml

from loraforge.config import TrainConfig, load_config
from loraforge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, tree) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tree) if not isinstance(tree, str) else tree)
    return path


MINIMAL = {"experiment_name": "x", "data": {"train_file": "train.csv"}}


def test_demo_config_loads_with_every_key():
    config = load_config(ROOT / "configs" / "demo.yaml")
    assert config.experiment_name == "demo"
    assert config.model.base_model == "auto"  # English data: the bundled minilm-l6
    assert config.data.eval_file == Path("data/demo/eval.csv")
    assert config.training.epochs == 3


def test_defaults_fill_a_minimal_config(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.model.base_model == "auto" and config.model.allow_low_coverage is False
    assert config.lora.target_modules is None
    assert config.training.learning_rate == pytest.approx(2e-3)
    assert config.data.effective_eval_split() == pytest.approx(0.1)


def test_overrides_set_nested_keys_with_yaml_types(tmp_path):
    config = load_config(
        write(tmp_path, MINIMAL),
        [
            "training.epochs=1",
            "training.learning_rate=1e-3",
            "lora.target_modules=[query, value]",
            "data.eval_split=0.2",
            "training.max_train_samples=null",
        ],
    )
    assert config.training.epochs == 1
    assert config.training.learning_rate == pytest.approx(1e-3)
    assert config.lora.target_modules == ["query", "value"]
    assert config.data.eval_split == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("tree", "overrides", "named"),
    [
        ({**MINIMAL, "lora": {"rank": 8}}, [], "lora.rank is not a known field"),
        ({**MINIMAL, "optimizer": {}}, [], "optimizer is not a known field"),
        (
            MINIMAL,
            ["training.epoch=2"],
            "--set training.epoch=2: is not a known field: did you mean `epochs`?",
        ),
        (MINIMAL, ["training.epochs=abc"], "training.epochs"),
        (MINIMAL, ["training.batch_size=0"], "training.batch_size"),
        (MINIMAL, ["lora.dropout=1.5"], "lora.dropout"),
        ({"experiment_name": "x"}, [], "data is required"),
        ({**MINIMAL, "experiment_name": "../escape"}, [], "experiment_name"),
        (
            {**MINIMAL, "data": {"train_file": "a.csv", "eval_file": "b.csv", "eval_split": 0.1}},
            [],
            "not both",
        ),
    ],
)
def test_bad_configs_are_refused_naming_the_key(tmp_path, tree, overrides, named):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, tree), overrides)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("experiment_name: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "must be a YAML mapping"),
    ],
)
def test_unreadable_configs_are_refused(tmp_path, content, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, content))


def test_missing_config_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_malformed_override_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        load_config(write(tmp_path, MINIMAL), ["training.epochs"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(write(tmp_path, MINIMAL), ["experiment_name.x=1"])


def test_yaml_round_trip_keeps_every_value(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), ["training.seed=7", "lora.r=4"])
    again = load_config(write(tmp_path, config.to_yaml()))
    assert again == config
    assert isinstance(again, TrainConfig)
