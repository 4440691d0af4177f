"""Helpers for dashboard tests: plain HTTP from a worker thread (urllib)."""

from __future__ import annotations

import urllib.error
import urllib.request

import attrs
import trio


@attrs.frozen
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fetch_blocking(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _opener.open(request, timeout=10) as response:
            return Fetched(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        with error:
            return Fetched(
                error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
            )


async def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Fetched:
    return await trio.to_thread.run_sync(fetch_blocking, url, headers, method)
