"""The sessions domain: sessions.db."""

from .models import Message, Session, SessionStats, ToolExecution
from .repository import SessionRepository
from .schemas import MessageSchema, SessionDocumentSchema, SessionSchema, ToolExecutionSchema

__all__ = [
    "Message",
    "MessageSchema",
    "Session",
    "SessionDocumentSchema",
    "SessionRepository",
    "SessionSchema",
    "SessionStats",
    "ToolExecution",
    "ToolExecutionSchema",
]
