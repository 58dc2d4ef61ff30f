"""Tracking: experiment records in our database and the bridge to MLflow."""
