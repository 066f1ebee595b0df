"""An index for ReferenceRepository.list: the newest references first."""


def up(migrator, db):
    db.execute_sql("CREATE INDEX IF NOT EXISTS idx_reference_store_created ON reference_store(created_at, id)")


def down(migrator, db):
    db.execute_sql("DROP INDEX idx_reference_store_created")
