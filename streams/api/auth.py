"""Bearer-token access to the API (``STAKEWATCH_API_TOKEN``).

The API says who depends on whom, so with a token set every ``/v1`` request must carry
``Authorization: Bearer <token>``; the comparison is constant-time (``hmac.compare_digest``)
so response timing does not leak the token. Without a token the port is still bound to
127.0.0.1 by default (``STAKEWATCH_WEB_HOST``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["authorized", "bearer_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorized(header: str | None, token: str) -> bool:
    """True when `header` is exactly ``Bearer <token>`` (constant-time in the token)."""
    expected = f"Bearer {token}".encode()
    given = (header or "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, expected)


def bearer_middleware(token: str | None):
    """A middleware that answers 401 unless the request carries the token (no-op if None)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and not authorized(request.headers.get("Authorization"), token):
            return web.json_response(
                {"error": "missing or wrong bearer token (Authorization: Bearer …)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="stakewatch"'},
            )
        return await handler(request)

    return check
