"""Jobs: the state machine on the jobs table, the Celery app and the training task."""
