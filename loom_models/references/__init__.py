"""The references domain: references.db."""

from .models import Reference, ReferenceType
from .repository import ReferenceRepository, ReferenceStats
from .schemas import ReferenceSchema, StoreSchema

__all__ = ["Reference", "ReferenceRepository", "ReferenceSchema", "ReferenceStats", "ReferenceType", "StoreSchema"]
