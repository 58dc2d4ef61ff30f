"""The experiment database: SQLAlchemy engine and sessions, ORM models, Alembic migrations."""
