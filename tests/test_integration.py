"""The real bundled model, fine-tuned on a few hundred demo rows."""

import pytest

from loraforge.config import config_from_tree
from loraforge.data.demo import write_demo
from loraforge.inference.predictor import Predictor, final_model_dir
from loraforge.training.runner import run_training


@pytest.mark.integration
@pytest.mark.slow
def test_bundled_model_beats_the_majority_class(tmp_path):
    from conftest import make_settings

    files = write_demo(tmp_path / "data", train_size=400, eval_size=200)
    majority_rate = max(files.label_counts.values()) / files.train_rows
    config = config_from_tree(
        {
            "experiment_name": "integration",
            "data": {
                "train_file": str(files.train),
                "eval_file": str(files.eval),
                "max_length": 64,
            },
            "training": {"epochs": 2},
        },
        source="test",
    )
    result = run_training(config, settings=make_settings(tmp_path))
    accuracy = result.metrics["final"]["accuracy"]
    assert accuracy > majority_rate + 0.03, (accuracy, majority_rate)
    predictor = Predictor(final_model_dir(result.results_dir))
    [happy, angry] = predictor.predict(
        [
            "Thank you so much, the crew was wonderful and friendly!",
            "Worst airline ever, they lost my bag again",
        ]
    )
    assert (happy.label, angry.label) == ("positive", "negative")
    assert happy.base_model == "minilm-l6" and happy.language == "en"
