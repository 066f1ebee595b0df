"""Migrations of the human-in-the-loop database (hitl.db)."""
