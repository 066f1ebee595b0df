"""The schema histories, one folder per domain; installed as loom_models.migrations.

Each file NNNN_name.py defines up(migrator, db) and down(migrator, db) for
playhouse.migrations. A file states its DDL itself (or freezes the model copies
it needs): it never imports the live models, which will have moved on.
"""
