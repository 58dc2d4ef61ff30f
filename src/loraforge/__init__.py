"""loraforge: self-hosted LoRA fine-tuning."""

__version__ = "0.1.0"
