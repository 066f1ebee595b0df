"""messages.item_json: the item an agent framework handed over, kept verbatim.

An SDK's conversation item (an OpenAI Agents SDK `function_call`, a
`reasoning` item...) carries more than the reference columns hold; it is kept
whole beside them, so that it comes back exactly as given. A column of our own,
nullable: the reference implementation neither reads nor writes it.
"""

from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column("messages", "item_json", TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("messages", "item_json"))
