"""loom_models: the persistence layer of the Loom agent platform.

from loom_models import open_storage
from loom_models.sessions import Message, Session

with open_storage("./loom-data") as storage:
    storage.sessions.save_session(Session(id="sess_1", agent_id="support"))
    storage.sessions.save_message("sess_1", Message(role="user", content="Hi"))
"""

from .errors import (
    ConflictError,
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseUnavailableError,
    DiskFullError,
    ForeignKeyConstraintError,
    LoomStorageError,
    NotFoundError,
    NotWritableError,
    ReferenceExpiredError,
    RequestExpiredError,
    SchemaMismatchError,
    ValidationError,
)
from .storage import Storage, open_storage

__all__ = [
    "ConflictError",
    "DatabaseCorruptError",
    "DatabaseLockedError",
    "DatabaseUnavailableError",
    "DiskFullError",
    "ForeignKeyConstraintError",
    "LoomStorageError",
    "NotFoundError",
    "NotWritableError",
    "ReferenceExpiredError",
    "RequestExpiredError",
    "SchemaMismatchError",
    "Storage",
    "ValidationError",
    "open_storage",
]
