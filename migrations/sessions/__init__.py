"""Migrations of the sessions database (sessions.db)."""
