"""Backups that are consistent while the store is in use, verified, and restorable.

    run = backup_set("./loom-data", "/backups", keep_days=7) # every database as one set; older sets pruned
    backup(db, "/backups/sessions.db")                       # one database: the verified copy's path
    restore("/backups/loom-20261126T120000Z/sessions.db", "./loom-data/sessions.db")
    restore_set("/backups/loom-20261126T120000Z", "./loom-data")   # every database, or none
    dump_sql(db, "sessions.sql"); load_sql("sessions.sql", "/tmp/copy.db")

sets.py writes and prunes backups, restore.py puts them back, dump.py writes
and reads SQL; the verified copy they all make is copies.py's.
"""

from ..backends.sqlite import safety_copies
from ..copies import safety_copy
from ..storage import DATABASE_FILES
from .dump import dump_sql, iter_dump, load_sql
from .restore import restore, restore_set
from .sets import (
    INCOMPLETE,
    MANIFEST,
    MAX_KEEP_DAYS,
    SET_PREFIX,
    BackupRun,
    backup,
    backup_data_dir,
    backup_set,
    prune_backups,
)

__all__ = [
    "DATABASE_FILES",
    "INCOMPLETE",
    "MANIFEST",
    "MAX_KEEP_DAYS",
    "SET_PREFIX",
    "BackupRun",
    "backup",
    "backup_data_dir",
    "backup_set",
    "dump_sql",
    "iter_dump",
    "load_sql",
    "prune_backups",
    "restore",
    "restore_set",
    "safety_copies",
    "safety_copy",
]
