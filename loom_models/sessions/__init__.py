"""The sessions domain: sessions.db."""

from .models import Message, Session, ToolExecution
from .repository import SessionRepository, SessionStats
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
