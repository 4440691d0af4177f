"""`TokenGate`: the dashboard asks for the cluster token, once per browser.

A request is let in when it carries the token as ``?token=`` or its dashboard login key
as ``?login=`` (the page then sets a cookie and redirects to the same URL without it:
``trident up`` prints a link with the key, see `trident._dashboard_url.login_key`; the
login page's form sends the token), the cookie, or an
``Authorization: Bearer <token>`` header (for Prometheus and scripts). The cookie holds
the login key (an HMAC of the token), never the token itself, and is named after the
port so that two dashboards on one host keep separate cookies.
"""

from __future__ import annotations

import enum
import hmac
import urllib.parse

from .._dashboard_url import login_key
from .http import Request


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    #: the right token in the query: set the cookie and redirect without it
    SET_COOKIE = "set-cookie"
    #: no credentials at all
    MISSING = "missing"
    #: wrong credentials
    WRONG = "wrong"


class TokenGate:
    """Checks requests against `token`; with None everything is allowed."""

    def __init__(self, token: str | None, port: int):
        self.token = token
        self.cookie_name = f"trident-dashboard-{port}"
        self._cookie_value = login_key(token) if token else ""

    def check(self, request: Request) -> Verdict:
        if not self.token:
            return Verdict.ALLOWED
        cookie = request.cookies.get(self.cookie_name)
        if cookie is not None and hmac.compare_digest(cookie, self._cookie_value):
            return Verdict.ALLOWED
        authorization = request.headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return Verdict.ALLOWED if self._matches(credentials.strip()) else Verdict.WRONG
        given = request.query.get("token")
        if given is not None:
            return Verdict.SET_COOKIE if self._matches(given.strip()) else Verdict.WRONG
        key = request.query.get("login")
        if key is not None:
            matches = hmac.compare_digest(key.encode(), self._cookie_value.encode())
            return Verdict.SET_COOKIE if matches else Verdict.WRONG
        return Verdict.WRONG if cookie is not None else Verdict.MISSING

    def _matches(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    def cookie_header(self) -> tuple[str, str]:
        return (
            "set-cookie",
            f"{self.cookie_name}={self._cookie_value}; Path=/; HttpOnly; SameSite=Strict",
        )

    @staticmethod
    def location_without_token(request: Request) -> str:
        query = {k: v for k, v in request.query.items() if k not in ("token", "login")}
        return request.path + ("?" + urllib.parse.urlencode(query) if query else "")
