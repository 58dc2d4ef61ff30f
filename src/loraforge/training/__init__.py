"""Training: the LoRA runner on the Hugging Face Trainer, its callbacks, checkpoint retention."""
