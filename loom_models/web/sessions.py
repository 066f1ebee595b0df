"""The conversations: sessions with what they cost, a search over their messages, and a transcript."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NotFoundError, ValidationError
from .site import site_of

LISTED = 100
FOUND = 50


async def sessions(request: Request) -> Response:
    site = site_of(request)
    query = request.query_params.get("q", "").strip()
    agent = request.query_params.get("agent") or None
    values: dict = {"query": query, "agent": agent, "sessions": [], "counts": {}, "hits": []}
    try:
        if query:
            values["hits"] = await site.storage.sessions.search_messages(query, agent_id=agent, limit=FOUND)
        else:
            values["sessions"] = await site.storage.sessions.list_sessions(agent_id=agent, limit=LISTED)
            values["counts"] = await site.storage.sessions.message_counts([s.id for s in values["sessions"]])
    except ValidationError:  # an agent id no agent can have
        pass
    return site.page(request, "sessions.html", **values)


async def transcript(request: Request) -> Response:
    site = site_of(request)
    session_id = request.path_params["session_id"]
    try:
        session = await site.storage.sessions.load_session(session_id)
        executions = await site.storage.sessions.load_tool_executions(session_id)
    except (NotFoundError, ValidationError):
        return site.page(request, "missing.html", status_code=404, what="session")
    return site.page(request, "session.html", session=session, executions=executions)
