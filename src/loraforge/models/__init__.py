"""Base models: the catalog of friendly names, LoRA targets per architecture, device choice."""
