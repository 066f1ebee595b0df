"""Migrations of the reference store (references.db)."""
