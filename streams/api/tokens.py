"""The API tokens file (``STAKEWATCH_API_TOKENS``): who may read which clients' world.

::

    [[token]]
    sha256 = "<hex SHA-256 of the bearer token>"   # printf %s "$TOKEN" | sha256sum
    clients = ["openai"]                           # or ["*"] for every client
    write = false                                  # true: may POST /v1/events

Only hashes are stored, so the file is no secret worth stealing and nothing in it can be
logged by mistake. A bad file stops start-up with a message naming the entry and the rule
(``token[1].clients: ...``); settings.py prefixes the variable.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from streams.query import SLUG
from streams.query.scope import EVERYTHING, Scope

__all__ = ["Grant", "TokenFileError", "grant_for_token", "read_token_file"]


@dataclass(frozen=True, slots=True)
class Grant:
    """One token's rights: the SHA-256 of the token, the clients it sees, whether it writes."""

    digest: bytes
    scope: Scope = EVERYTHING
    write: bool = False


def grant_for_token(token: str, *, write: bool = True) -> Grant:
    """The grant of ``STAKEWATCH_API_TOKEN``: one token that sees and may do everything."""
    return Grant(hashlib.sha256(token.encode()).digest(), EVERYTHING, write)


class TokenFileError(ValueError):
    """The tokens file cannot be used; the message names the entry (never a hash)."""


def _hex(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected the hex SHA-256 of the token as a string")
    value = value.strip().lower()
    if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
        raise ValueError('not a SHA-256 in hex (64 characters: printf %s "$TOKEN" | sha256sum)')
    return value


def _clients(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError('expected a non-empty list of client ids, or ["*"]')
    if "*" in value:
        if len(value) > 1:
            raise ValueError('"*" means every client: give it alone')
        return ("*",)
    for v in value:
        if not SLUG.match(v):
            raise ValueError(f"{v[:40]!r} is not a client id (lowercase slug such as 'openai')")
    return tuple(value)


class _Token(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    sha256: Annotated[str, BeforeValidator(_hex)]
    clients: Annotated[tuple[str, ...], BeforeValidator(_clients)]
    write: bool = False


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    token: list[_Token] = Field(min_length=1)


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def parse_tokens(text: str) -> tuple[Grant, ...]:
    """Grants from the file's text (raises ``TokenFileError``)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TokenFileError(f"invalid TOML: {exc}") from None
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        parts = [p for p in err["loc"] if isinstance(p, int) or not str(p).startswith("function")]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        elif err["type"] == "missing":
            msg = "required" if parts != ["token"] else "no [[token]] entries"
        raise TokenFileError(f"{_where(parts)}: {msg}") from None
    grants = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(parsed.token):
        if entry.sha256 in seen:
            raise TokenFileError(
                f"token[{i}].sha256: the same token as token[{seen[entry.sha256]}]"
            )
        seen[entry.sha256] = i
        scope = EVERYTHING if entry.clients == ("*",) else Scope.of(entry.clients)
        grants.append(Grant(bytes.fromhex(entry.sha256), scope, entry.write))
    return tuple(grants)


def read_token_file(path: Path) -> tuple[Grant, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise TokenFileError(f"cannot read {str(path)!r}: {reason}") from None
    return parse_tokens(text)
