"""Alembic migrations of the relational store, run by ``Store.open``."""
