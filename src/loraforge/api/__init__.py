"""The HTTP API: FastAPI app, dependencies, one router per noun."""
