"""Documents: a store's records as one JSON object, checked whole, then written in one go.

    from loom_models.documents import load_document

    loaded = load_document(storage, "records.json")     # or the document itself
    [session.id for session in loaded.sessions]

    loom-db import records.json                         # the same from the shell

Applications import records with it; test suites load their sample data with
it (loom_models.testing calls it a fixture). A document is one JSON object;
each key is optional:

    {
      "sessions": [
        {"id": "sess_1", "agent_id": "support", "context": {"user": "john"},
         "messages": [{"role": "user", "content": "Where is my order?", "token_count": 7}],
         "tool_executions": [{"tool_name": "lookup_order", "input": {"order": 42}}]}
      ],
      "requests": [
        {"id": "req_1", "agent_id": "support", "session_id": "sess_1", "question": "Refund 12 EUR?"},
        {"agent_id": "support", "session_id": "sess_1", "question": "Note?", "request_type": "input",
         "status": "responded", "response": "VIP customer", "responded_by": "alice"}
      ],
      "references": [
        {"data": "quarter,revenue\\nQ3,1.12\\n", "type": "TOOL_RESULT", "ttl": 3600},
        {"data_base64": "iVBORw0KGgo=", "type": "LARGE_PAYLOAD"}
      ]
    }

- `sessions`: each as `loom-db export` (SessionRepository.export_session) writes
  it, a SessionDocumentSchema; ids and times are kept, messages and tool
  executions get new row ids, and the totals are the sum of the messages.
- `requests`: HumanRequestSchema fields, as HumanRequestSchema().dump writes them,
  and a `status` (pending when absent). A request is filed as given, then brought
  to its status: approved, rejected or responded (with `response`, `responded_by`
  and `response_data`) by answering it as the document loads, which the store only
  allows before its deadline, so leave `created_at` out of a decided request or
  give it a `timeout_ms` that reaches past the load; `responded_at` is the load
  time. An expired request needs a deadline already past.
- `references`: `data`, text stored as UTF-8, or `data_base64`, bytes; `type`, a
  ReferenceType name (UNSPECIFIED when absent); `ttl`, seconds, or null for never.

Everything is checked before anything is written (a ValidationError names the
item: `requests: 1: status: ...`), and the writes share one transaction on each
database, so an id the store holds already (ConflictError) leaves it as it was too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import marshmallow
from marshmallow import fields

from .calls import storage_call
from .columns import utc_now
from .errors import ValidationError
from .hitl import HumanRequest, HumanRequestRepository, HumanRequestSchema, ResponseSchema
from .hitl.models import ANSWERS, STATUSES
from .hitl.schemas import wrong_answer
from .references import Reference, ReferenceType, StoreSchema
from .sessions import Session, SessionDocumentSchema
from .storage import Storage
from .validation import Text, load, loadable

KINDS = ("sessions", "requests", "references")

_SESSION = SessionDocumentSchema()
_REQUEST = HumanRequestSchema()
_RESPONSE = ResponseSchema()
_STORE = StoreSchema()

_EXPIRED_TOO_EARLY = "An expired request needs a deadline (created_at + timeout_ms) in the past."
_DECIDED_TOO_LATE = (
    "A decided request is answered as it loads, which must be before its deadline"
    " (created_at + timeout_ms): leave created_at out, or lengthen timeout_ms."
)


@dataclasses.dataclass
class LoadedDocument:
    """What load_document wrote, as the repositories returned it."""

    sessions: list[Session]
    requests: list[HumanRequest]
    references: list[Reference]


def is_document(document: Any) -> bool:
    """Whether a JSON document is a document of records (any of KINDS), rather than one exported session."""
    return isinstance(document, Mapping) and any(kind in document for kind in KINDS)


def load_document(
    storage: Storage, source: str | os.PathLike | Mapping, progress: Callable[[int, int], object] | None = None
) -> LoadedDocument:
    """Check a document (a file's path, or the document), then write all of it or nothing.

    load_document(storage, "records.json").requests[0].status

    `progress(rows, total)` follows the writing: called after each record with
    the rows it wrote (a session's are itself, its messages and its tool
    executions) and the rows of the whole document.
    """
    document = _read(source) if isinstance(source, (str, os.PathLike)) else source
    return _write(storage, *_checked(document), progress or (lambda rows, total: None))


def store_request(
    hitl: HumanRequestRepository, request: HumanRequest | Mapping, status: str = "pending", **answer: Any
) -> HumanRequest:
    """File a request and bring it to `status`, as a person (answering now) or its deadline would.

    store_request(storage.hitl, HumanRequest(...), "approved", response="Yes", responded_by="alice")

    `answer` is respond_to_request's response, responded_by and response_data.
    """
    stored = hitl.store(request)
    if status == "pending":
        return stored
    if status == "expired":
        expired = hitl.wait_for_response(stored.id, timeout=0)  # expires it, as its deadline is past
        if expired.status != "expired":
            raise ValidationError({"status": [_EXPIRED_TOO_EARLY]})
        return expired
    return hitl.respond_to_request(stored.id, status, **answer)


def _read(path: str | os.PathLike) -> Any:
    with open(path, "rb") as handle:
        try:
            return json.load(handle)
        except ValueError as error:
            raise ValidationError({os.fspath(path): ["Not JSON: %s." % error]}) from None


@storage_call
def _write(
    storage: Storage, sessions: list, requests: list, references: list, progress: Callable[[int, int], object]
) -> LoadedDocument:
    rows = [1 + len(s.get("messages") or []) + len(s.get("tool_executions") or []) for s in sessions]
    total = sum(rows) + len(requests) + len(references)
    loaded = LoadedDocument([], [], [])
    with _all_or_nothing(storage):
        for session, written in zip(sessions, rows, strict=True):
            loaded.sessions.append(storage.sessions.import_session(session))
            progress(written, total)
        for request, status, answer in requests:
            loaded.requests.append(store_request(storage.hitl, request, status, **answer))
            progress(1, total)
        for reference in references:
            loaded.references.append(storage.references.store(**reference))
            progress(1, total)
    return loaded


@contextlib.contextmanager
def _all_or_nothing(storage: Storage) -> Iterator[None]:
    """One transaction on each database of the store; the repositories' own become savepoints in it."""
    with contextlib.ExitStack() as transactions:
        for _, repositories in storage.by_database():  # always in this order: two loaders never deadlock
            transactions.enter_context(repositories[0].backend.write())
        yield


def _checked(document: Any) -> tuple[list, list, list]:
    """The sessions, requests and references of a document, each checked, ready to write."""
    if not isinstance(document, Mapping):
        raise ValidationError({"document": ["Must be a JSON object with sessions, requests or references."]})
    unknown = sorted(set(document) - set(KINDS))
    if unknown:
        raise ValidationError({key: ["Unknown key: a document holds %s." % ", ".join(KINDS)] for key in unknown})
    return (
        _each(document.get("sessions", []), "sessions", _session),
        _each(document.get("requests", []), "requests", _request),
        _each(document.get("references", []), "references", _reference),
    )


def _each(items: Any, name: str, check: Callable[[Mapping], Any]) -> list:
    """`check` of every item of a list; an error names the list and the item's index."""
    if not isinstance(items, list):
        raise ValidationError({name: ["Must be a list."]})
    checked = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValidationError({name: {index: ["Must be a JSON object."]}})
        try:
            checked.append(check(item))
        except ValidationError as error:
            raise ValidationError({name: {index: error.messages}}) from error
    return checked


def _session(document: Mapping) -> Mapping:
    """An exported session, checked as import_session will check it; written as it is."""
    load(_SESSION, document)
    return document


def _request(item: Mapping) -> tuple[dict, str, dict]:
    """The request to file, the status to bring it to, and the answer that does."""
    request = loadable(_REQUEST, item)
    values = load(_REQUEST, request)
    status = item.get("status", "pending")
    if status not in STATUSES:
        raise ValidationError({"status": ["Must be one of: %s." % ", ".join(STATUSES)]})
    overdue = values["expires_at"] <= utc_now()
    if status == "expired" and not overdue:
        raise ValidationError({"status": [_EXPIRED_TOO_EARLY]})
    if status in ("pending", "expired"):
        return request, status, {}
    if overdue:
        raise ValidationError({"status": [_DECIDED_TOO_LATE]})
    return request, status, _answer(item, values["request_type"])


def _answer(item: Mapping, request_type: str) -> dict:
    """respond_to_request's arguments for a decided request of a document."""
    answer = load(_RESPONSE, {k: item[k] for k in ("status", "response", "responded_by", "response_data") if k in item})
    if answer["status"] not in ANSWERS[request_type]:
        raise wrong_answer(request_type)
    return {k: v for k, v in answer.items() if k != "status"}


class _Base64Bytes(fields.Field):
    default_error_messages = {"invalid": "Must be base64 text."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping | None, **kwargs: Any) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (TypeError, ValueError, binascii.Error):
            raise self.make_error("invalid") from None


class _DocumentReferenceSchema(marshmallow.Schema):
    """A reference in a document: `data` (text, stored as UTF-8) or `data_base64`, a type name, a ttl."""

    data = Text()
    data_base64 = _Base64Bytes()
    type = fields.Enum(ReferenceType, load_default=ReferenceType.UNSPECIFIED)
    ttl = fields.Raw(allow_none=True, load_default=None)  # StoreSchema checks it

    @marshmallow.validates_schema
    def _one_content(self, data: dict, **kwargs: Any) -> None:
        if ("data" in data) == ("data_base64" in data):
            raise marshmallow.ValidationError("Give data (text) or data_base64 (bytes), one of them.", "data")

    @marshmallow.post_load
    def _bytes(self, data: dict, **kwargs: Any) -> dict:
        content = data.pop("data_base64") if "data_base64" in data else data.pop("data").encode("utf-8")
        return {**data, "data": content}


_DOCUMENT_REFERENCE = _DocumentReferenceSchema()


def _reference(item: Mapping) -> dict:
    """store()'s arguments for a reference of a document."""
    return load(_STORE, load(_DOCUMENT_REFERENCE, item))
