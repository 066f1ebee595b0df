"""The review inbox as an ASGI application: its routes, who may use it, and signing in.

    from loom_models import aio
    from loom_models.web import create_app

    storage = await aio.open_storage("./loom-data")
    app = create_app(storage, user="alice")        # an ASGI application
    uvicorn.run(app, host="127.0.0.1", port=8400)   # what `loom-db serve` does

Every page is rendered on the server and works without JavaScript; the inbox's
own script only keeps it current (new requests in, expired ones out) and counts
the time left down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..aio import AsyncStorage
from . import inbox, sessions, usage
from .guard import BROWSER, SIGNED_IN, Guard, new_browser_id
from .site import Site, site_of

# What a person who has not signed in may still fetch.
_OPEN = ("/sign-in", "/static/")
# Scripts and styles from this server only: no inline script runs, whatever a page holds.
_POLICY = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"


def create_app(storage: AsyncStorage, *, user: str | None = None, token: str | None = None) -> Starlette:
    """The inbox over `storage`, deciding as `user`; with `token`, a person signs in with it and a name first."""
    app = Starlette(
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_guarded)],
        routes=[
            Route("/", inbox.inbox, name="inbox"),
            Route("/inbox/rows", inbox.rows, name="rows"),
            Route("/requests/{request_id}", inbox.show, name="show"),
            Route("/requests/{request_id}/decision", inbox.decide, methods=["POST"], name="decide"),
            Route("/sessions", sessions.sessions, name="sessions"),
            Route("/sessions/{session_id}", sessions.transcript, name="transcript"),
            Route("/usage", usage.usage, name="usage"),
            Route("/sign-in", _sign_in, methods=["GET", "POST"], name="sign_in"),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
        ],
    )
    app.state.site = Site(storage, Guard(token=token, user=user))
    return app


async def _guarded(request: Request, call_next: Any) -> Response:
    guard = site_of(request).guard
    request.state.browser = request.cookies.get(BROWSER) or new_browser_id()
    if guard.signed_in(request) is None and not request.url.path.startswith(_OPEN):
        back = request.url.path + ("?" + request.url.query if request.url.query else "")
        sign_in = request.url_for("sign_in").include_query_params(next=back)
        response: Response = RedirectResponse(sign_in, status_code=303)
    else:
        response = await call_next(request)
    if BROWSER not in request.cookies:
        response.set_cookie(BROWSER, request.state.browser, httponly=True, samesite="strict")
    response.headers["Content-Security-Policy"] = _POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def _sign_in(request: Request) -> Response:
    site = site_of(request)
    if site.guard.token is None:  # nobody signs in to an inbox without a token
        return RedirectResponse(request.url_for("inbox"), status_code=303)
    if request.method == "GET":
        return site.page(request, "sign_in.html", next=_back_to(request.query_params.get("next")))
    form = await request.form()
    name, back = str(form.get("name", "")).strip(), _back_to(str(form.get("next", "")))
    valid = site.guard.form_token_matches(request, str(form.get("form_token", "")))
    if not valid or not site.guard.token_matches(str(form.get("token", ""))) or not 0 < len(name) <= 100:
        return site.page(request, "sign_in.html", status_code=403, problem="Wrong token, or no name.", next=back)
    response = RedirectResponse(back or request.url_for("inbox"), status_code=303)
    response.set_cookie(SIGNED_IN, site.guard.sign_in_cookie(name), httponly=True, samesite="strict")
    return response


def _back_to(path: str | None) -> str | None:
    """Where to go after signing in: a path of this server only ("//host" would leave it)."""
    if path and path.startswith("/") and not path.startswith(("//", "/\\")):
        return path
    return None
