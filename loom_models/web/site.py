"""What every page of the inbox needs: the storage, the guard, and the templates.

    site = Site(storage, Guard(token=None, user="alice"))
    site.page(request, "inbox.html", requests=[...])   # an HTML response, its values escaped

Handlers find it as `request.app.state.site`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from ..aio import AsyncStorage
from ..columns import utc_now
from ..hitl import HumanRequest
from .guard import Guard

TEMPLATES = Path(__file__).parent / "templates"


class Site:
    def __init__(self, storage: AsyncStorage, guard: Guard) -> None:
        self.storage = storage
        self.guard = guard
        # Starlette's Jinja2Templates escapes every value in .html templates.
        self.templates = Jinja2Templates(directory=TEMPLATES)
        self.templates.env.filters.update(left=time_left, pretty=pretty, money=money)

    def page(self, request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
        values.update(
            user=self.guard.signed_in(request),
            form_token=self.guard.form_token(request),
            signs_in=self.guard.token is not None,
        )
        return self.templates.TemplateResponse(request, name, values, status_code=status_code)


def site_of(request: Request) -> Site:
    return request.app.state.site


def time_left(found: HumanRequest) -> str:
    """The time a pending request has left, as a person reads it; else its status."""
    if found.status != "pending":
        return found.status
    seconds = int((found.expires_at - utc_now()).total_seconds())
    if seconds <= 0:
        return "expired"
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 7200:
        return "%d min" % (seconds // 60)
    return "%d h" % (seconds // 3600) if seconds < 172800 else "%d days" % (seconds // 86400)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def money(dollars: float) -> str:
    return "$%.2f" % dollars if dollars >= 1 or dollars == 0 else "$%.4g" % dollars
