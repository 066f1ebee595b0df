"""Who may use the review inbox, and proof that a form came from its own pages.

    guard = Guard(token="s3cret", user=None)
    guard.signed_in(request)            # the name the person signed in with, or None
    guard.sign_in_cookie("alice")       # the cookie value that proves it
    guard.form_token(request)           # a form's CSRF token, tied to the browser's cookie

Without a token (the inbox on 127.0.0.1) everyone who can reach the port is the
`user` the server was started for. With one, a person signs in with the token
and their name, which their decisions record; the cookie carries the name and
an HMAC of it under the token, so it cannot be forged without the token, and no
state is kept on the server.

Forms carry an HMAC of the browser's own random cookie (the double-submit
pattern): another site can make a browser send the cookie, but cannot read it
to write the form's token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from starlette.requests import Request

SIGNED_IN = "loom_signed_in"
BROWSER = "loom_browser"


class Guard:
    def __init__(self, *, token: str | None, user: str | None) -> None:
        self.token = token
        self.user = user
        # Form tokens need a key even without a sign-in token; one per server run.
        self._key = (token or secrets.token_hex(32)).encode()

    def signed_in(self, request: Request) -> str | None:
        """The name of the person using the inbox, or None when they must sign in first."""
        if self.token is None:
            return self.user or "anonymous"
        encoded, _, proof = request.cookies.get(SIGNED_IN, "").rpartition(":")
        try:
            name = base64.urlsafe_b64decode(encoded.encode()).decode()
        except ValueError:  # not what sign_in_cookie wrote (binascii.Error and UnicodeDecodeError are ValueErrors)
            return None
        return name if name and _same(proof, self._mac("sign-in", name)) else None

    def token_matches(self, given: str) -> bool:
        return self.token is not None and _same(given, self.token)

    def sign_in_cookie(self, name: str) -> str:
        """`name` (any text: base64 keeps the cookie ASCII) and its HMAC under the token."""
        return "%s:%s" % (base64.urlsafe_b64encode(name.encode()).decode(), self._mac("sign-in", name))

    def form_token(self, request: Request) -> str:
        """The token of the forms on a page for this browser (its cookie, or the one the page sets)."""
        return self._mac("form", request.state.browser)

    def form_token_matches(self, request: Request, given: str) -> bool:
        browser = request.cookies.get(BROWSER)
        return browser is not None and _same(given, self._mac("form", browser))

    def _mac(self, purpose: str, text: str) -> str:
        return hmac.new(self._key, ("%s\0%s" % (purpose, text)).encode(), hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    """In constant time, for any text given (compare_digest refuses str beyond ASCII)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)
