"""Migrations of the LangGraph checkpoints domain (checkpoints.db)."""
