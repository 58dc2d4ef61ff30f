"""Predictions from a fine-tuned experiment."""
