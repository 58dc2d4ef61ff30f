"""The default LoRA targets fit every catalog architecture: the right layers, never the head."""

import re

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import (
    AlbertConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from loraforge.models.lora_targets import default_target_modules

SMALL = dict(
    vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
)

ARCHITECTURES = {
    # catalog: minilm-l6, bert-base-chinese
    "bert": (BertConfig(**SMALL), {"query", "key", "value", "dense", "pooler"}),
    "distilbert": (
        DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64),
        {"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"},
    ),
    "roberta": (RobertaConfig(**SMALL), {"query", "key", "value", "dense"}),
    "xlm-roberta": (XLMRobertaConfig(**SMALL), {"query", "key", "value", "dense"}),
    "electra": (ElectraConfig(embedding_size=32, **SMALL), {"query", "key", "value", "dense"}),
    "albert": (
        AlbertConfig(embedding_size=16, **SMALL),
        {"query", "key", "value", "dense", "ffn", "ffn_output"},
    ),
    "deberta-v2": (DebertaV2Config(**SMALL), {"query_proj", "key_proj", "value_proj", "dense"}),
}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_default_targets_adapt_attention_and_feed_forward_only(architecture):
    config, expected = ARCHITECTURES[architecture]
    config.num_labels = 3
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    targets = default_target_modules(model.config.model_type)
    assert targets != "all-linear", "a catalog architecture fell back to the generic targets"
    peft_model = get_peft_model(
        model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=targets)
    )
    adapted = [name for name, module in peft_model.named_modules() if hasattr(module, "lora_A")]
    kinds = {"pooler" if ".pooler." in n else n.rsplit(".", 1)[-1] for n in adapted}
    assert kinds == expected
    assert not any(re.search(r"(classifier|score)\.", n) for n in adapted), (
        "the head is trained in full, not adapted"
    )
    out = peft_model(
        input_ids=torch.randint(5, 100, (2, 7)),
        attention_mask=torch.ones(2, 7, dtype=torch.long),
        labels=torch.tensor([0, 2]),
    )
    out.loss.backward()
    assert all(
        p.grad is not None
        for n, p in peft_model.named_parameters()
        if p.requires_grad and "lora_A" in n
    )
