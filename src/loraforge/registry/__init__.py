"""The model registry: named, versioned, staged models built from succeeded experiments.

Our SQL tables are its record of truth; later layers (API, CLI, MLflow mirror, cards)
build on the services here.
"""
