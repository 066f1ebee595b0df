"""The inbox's pages: what waits for a person, one request, and its decision.

A decision goes through HumanRequestRepository.respond_to_request, whose
compare-and-set lets exactly one of two people answering at once win; the
other is shown who did.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..columns import utc_now
from ..errors import ConflictError, NotFoundError, RequestExpiredError, ValidationError
from ..hitl import HumanRequest
from ..hitl.models import STATUSES
from .site import Site, site_of

LISTED = 100
# The session's latest messages a request page shows, for the question's context.
LAST_MESSAGES = 10
# What each kind of request is answered with: the statuses its form offers.
ANSWERS = {"approval": ("approved", "rejected"), "input": ("responded",), "selection": ("responded",)}


async def inbox(request: Request) -> Response:
    return site_of(request).page(request, "inbox.html", **await _listed(request))


async def rows(request: Request) -> Response:
    """The inbox's rows alone: what its page fetches every few seconds to stay current."""
    return site_of(request).page(request, "_rows.html", **await _listed(request))


async def show(request: Request) -> Response:
    site = site_of(request)
    found = await _request(site, request.path_params["request_id"])
    if found is None:
        return site.page(request, "missing.html", status_code=404, what="request")
    return site.page(request, "request.html", **await _request_page(site, found))


async def decide(request: Request) -> Response:
    site = site_of(request)
    form = await request.form()
    if not site.guard.form_token_matches(request, str(form.get("form_token", ""))):
        return site.page(request, "refused.html", status_code=403, reason="The form has expired: open the page again.")
    found = await _request(site, request.path_params["request_id"])
    if found is None:
        return site.page(request, "missing.html", status_code=404, what="request")
    answer, text = str(form.get("answer", "")), str(form.get("note") or form.get("choice") or "")
    options = _options(found)
    # Checked against its kind, not its status: a request decided meanwhile is the repository's to refuse.
    if answer not in ANSWERS.get(found.request_type, ()) or (options and text not in options):
        shown = await _request_page(site, found)
        return site.page(request, "request.html", status_code=400, problem="Choose one of the answers.", **shown)
    try:
        await site.storage.hitl.respond_to_request(found.id, answer, text, responded_by=site.guard.signed_in(request))
    except (ConflictError, RequestExpiredError, ValidationError) as error:
        found = await site.storage.hitl.get(found.id)
        shown = await _request_page(site, found)
        return site.page(request, "request.html", status_code=409, problem=_refusal(found, error), **shown)
    return RedirectResponse(request.url_for("show", request_id=found.id), status_code=303)


async def _listed(request: Request) -> dict:
    status = request.query_params.get("status") or "pending"
    status = status if status in (*STATUSES, "all") else "pending"
    agent = request.query_params.get("agent") or None
    try:
        found, total = await site_of(request).storage.hitl.list_requests(
            status=None if status == "all" else status, agent_id=agent, limit=LISTED
        )
    except ValidationError:  # an agent id no agent can have
        found, total = [], 0
    return {"requests": found, "total": total, "status": status, "agent": agent, "statuses": STATUSES}


async def _request(site: Site, request_id: str) -> HumanRequest | None:
    try:
        return await site.storage.hitl.get(request_id)
    except (NotFoundError, ValidationError):
        return None


async def _request_page(site: Site, found: HumanRequest) -> dict:
    try:
        messages = await site.storage.sessions.load_messages(found.session_id, limit=LAST_MESSAGES)
    except (NotFoundError, ValidationError):
        messages = []
    live = found.status == "pending" and found.expires_at > utc_now()
    return {
        "found": found,
        "messages": messages,
        "answers": ANSWERS.get(found.request_type, ()) if live else (),
        "options": _options(found),
    }


def _options(found: HumanRequest) -> list[str]:
    """What a selection request offers: the `options` list of its context, if any."""
    options = found.context.get("options") if isinstance(found.context, dict) else None
    return [str(option) for option in options] if isinstance(options, list) else []


def _refusal(found: HumanRequest, error: Exception) -> str:
    if found.status == "pending":
        return str(error)
    if found.status == "expired":
        return "This request expired before it was answered."
    return "%s answered it first: %s." % (found.responded_by or "Someone", found.status)
