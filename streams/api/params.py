"""Request checks at the HTTP boundary: a one-line reason and a 4xx, never a traceback.

Parameters are strict: an unknown or repeated one is an error, because a typo such as
``?clinet=google`` would otherwise quietly return every client's conflicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from streams.engine import SEVERITIES
from streams.query import SLUG

__all__ = ["ApiError", "QueryParams"]

_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


class ApiError(Exception):
    """An answer other than 200 with a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def slug(value: str, name: str) -> str:
    if not SLUG.match(value):
        raise ApiError(400, f"{name}: {value[:80]!r} is not an entity id (^[a-z0-9][a-z0-9._-]*$)")
    return value


class QueryParams:
    """The query string of one request, checked against the parameters a route accepts."""

    def __init__(self, request: web.Request, allowed: set[str]) -> None:
        query = request.rel_url.query
        for name in query:
            if name not in allowed:
                accepted = ", ".join(sorted(allowed)) or "none"
                raise ApiError(400, f"unknown parameter {name[:40]!r} (accepted: {accepted})")
            if len(query.getall(name)) > 1:
                raise ApiError(400, f"{name}: given more than once")
        self._query: Mapping[str, str] = query

    def _get(self, name: str, required: bool) -> str | None:
        value = self._query.get(name)
        if value is None and required:
            raise ApiError(400, f"{name}: required")
        if value == "":
            raise ApiError(400, f"{name}: empty (leave the parameter out instead)")
        return value

    def slug(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name, required)
        return None if value is None else slug(value, name)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is not None and not _TEXT.match(value):
            raise ApiError(400, f"{name}: 1 to 256 characters, no control characters")
        return value

    def severity(self, name: str = "severity") -> str | None:
        value = self._get(name, False)
        if value is not None and value not in SEVERITIES:
            raise ApiError(400, f"{name}: one of {', '.join(SEVERITIES)}, got {value[:40]!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._get(name, False)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise ApiError(400, f"{name}: a whole number from {low} to {high}, got {value[:40]!r}")
        return int(value)
