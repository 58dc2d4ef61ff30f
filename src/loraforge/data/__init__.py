"""Data sets: loading, validation, analysis, versioning, splitting and the demo corpus."""
