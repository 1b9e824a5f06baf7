"""Alembic migrations of the firelane schema (run by `firelane init`)."""
