"""Which modules LoRA adapts, per architecture.

Regexes rather than bare names: a bare ``dense`` would also match the classification
head of RoBERTa (``classifier.dense``), which PEFT already trains in full as a module to
save; adapting it twice fails. So targets are restricted to the encoder's layers.
Attention and feed-forward projections together: on the bundled model this gave several
accuracy points over query/value alone (README, "Defaults").
"""

from __future__ import annotations

_BERT_LAYER = (
    r"encoder\.layer\.\d+\."
    r"(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
)

DEFAULT_TARGETS: dict[str, str] = {
    # BertForSequenceClassification classifies the pooler's output, so the pooler is adapted too.
    "bert": rf".*\.({_BERT_LAYER}|pooler\.dense)",
    # RoBERTa, XLM-R and ELECTRA share BERT's layer names; their heads do not use a pooler.
    "roberta": rf".*\.{_BERT_LAYER}",
    "xlm-roberta": rf".*\.{_BERT_LAYER}",
    "electra": rf".*\.{_BERT_LAYER}",
    "distilbert": r".*\.transformer\.layer\.\d+\.(attention\.(q_lin|k_lin|v_lin|out_lin)|ffn\.(lin1|lin2))",
    "albert": r".*\.albert_layers\.\d+\.(attention\.(query|key|value|dense)|ffn|ffn_output)",
    "deberta-v2": (
        r".*\.encoder\.layer\.\d+\.(attention\.self\.(query_proj|key_proj|value_proj)"
        r"|attention\.output\.dense|intermediate\.dense|output\.dense)"
    ),
}

# Anything else: every linear layer but the head, as PEFT's "all-linear" shorthand does.
FALLBACK_TARGET = "all-linear"


def default_target_modules(model_type: str) -> str:
    return DEFAULT_TARGETS.get(model_type, FALLBACK_TARGET)
