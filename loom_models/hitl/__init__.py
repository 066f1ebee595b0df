"""The human-in-the-loop domain: hitl.db."""

from .models import HumanRequest
from .repository import HumanRequestRepository
from .schemas import HumanRequestSchema, ResponseSchema

__all__ = ["HumanRequest", "HumanRequestRepository", "HumanRequestSchema", "ResponseSchema"]
