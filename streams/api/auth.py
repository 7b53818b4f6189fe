"""Bearer-token access to the API: who is asking, and which clients' world they may see.

The API says who depends on whom, and each client's contracts and spend are its own
secrets, so with tokens configured every ``/v1`` request must carry
``Authorization: Bearer <token>``. Tokens come from ``STAKEWATCH_API_TOKEN`` (one token,
every client) and the tokens file ``STAKEWATCH_API_TOKENS`` (scoped, streams/api/tokens.py).
The token is hashed (SHA-256) and the hash compared with every stored one in constant time
(``hmac.compare_digest``, no early exit), so response timing tells nothing about which
token is close. Without any token the port is still bound to 127.0.0.1 by default
(``STAKEWATCH_WEB_HOST``), and the worker refuses another address (settings.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from streams.api.tokens import Grant, grant_for_token
from streams.query.scope import EVERYTHING, Scope

__all__ = ["GRANT", "Access", "authorized", "bearer_middleware", "scope_of"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# request key: the Grant of the token that came with it (typed keys from aiohttp 3.14 on)
GRANT = web.RequestKey("grant", Grant) if hasattr(web, "RequestKey") else "stakewatch.grant"
_OPEN = Grant(b"", EVERYTHING, write=False)  # no tokens configured: read everything
_PREFIX = b"Bearer "


def authorized(header: str | None, token: str) -> bool:
    """True when `header` is exactly ``Bearer <token>`` (constant-time in the token)."""
    return Access.of(token).grant(header) is not None


class Access:
    """The configured grants; `grant` finds the one a request's header proves."""

    def __init__(self, grants: Sequence[Grant] = ()) -> None:
        self.grants = tuple(grants)

    @classmethod
    def of(cls, token: str | None = None, grants: Sequence[Grant] = ()) -> Access:
        """``STAKEWATCH_API_TOKEN`` (if set) as an all-clients grant, plus the file's."""
        return cls(((grant_for_token(token),) if token else ()) + tuple(grants))

    @property
    def required(self) -> bool:
        return bool(self.grants)

    def grant(self, header: str | None) -> Grant | None:
        """The grant of the bearer token in `header`; None when it proves none."""
        if not self.grants:
            return _OPEN
        given = (header or "").encode("utf-8", "surrogateescape")
        token = given[len(_PREFIX) :] if given.startswith(_PREFIX) else b""
        digest = hashlib.sha256(token).digest()
        found = None
        for grant in self.grants:  # every one, always: no timing difference between them
            if hmac.compare_digest(digest, grant.digest) and token:
                found = grant
        return found


def scope_of(request: web.Request) -> Scope:
    """The clients the request's token may see (every one when no tokens are configured)."""
    grant = request.get(GRANT)
    return grant.scope if grant is not None else EVERYTHING


def bearer_middleware(access: Access | str | None):
    """A middleware that answers 401 unless the request proves a grant, and puts the grant
    on the request (``request[GRANT]``, read by `scope_of`)."""
    if not isinstance(access, Access):
        access = Access.of(access)
    checker = access

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        grant = checker.grant(request.headers.get("Authorization"))
        if grant is None:
            return web.json_response(
                {"error": "missing or wrong bearer token (Authorization: Bearer …)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="stakewatch"'},
            )
        request[GRANT] = grant
        return await handler(request)

    return check
