"""Which entity id an outside record lands on: known ids by registry identifier or by
name, else a stable slug derived from the record (docs/ingest.md, "Identity").

`Directory` holds the entities already registered (``--entities FILE``, the reference
topic) and those an import assigns as it goes. A record whose identifier (LEI, company
number, ...) one known entity carries lands on that entity's id; identifiers naming two
different ids are a clash, reported by the caller. A new record gets
``<name slug>-<8 hex>``: the name for the reader, and the first eight hex digits of the
SHA-256 of its key — its preferred identifier (an LEI first) or, without one, its
publisher and record id — so the same record gets the same id in every run, whatever else
the file holds. Two keys whose ids would collide get longer digests.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.events import EntityRegistered, Rejection, decode

__all__ = ["Directory", "Identifier", "name_key", "slugify"]

Identifier = tuple[str, str]  # (scheme, id)

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_NAME_PART = 48
# Legal-form words dropped when names are compared (and from CSV slugs): "Scale AI, Inc."
# and "Scale AI" are one supplier to a procurement export.
_LEGAL_FORMS = frozenset(
    {
        *("inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited"),
        *("llc", "llp", "lp", "plc", "gmbh", "ag", "sa", "sas", "sarl", "bv", "nv", "spa"),
        *("srl", "oy", "ab", "as", "kk", "pte", "pty"),
    }
)


def slugify(text: str, fallback: str = "entity") -> str:
    """Lower-case ASCII words joined by dashes, at most 48 characters (cut at a dash)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > _NAME_PART:
        slug = slug[:_NAME_PART].rsplit("-", 1)[0] or slug[:_NAME_PART]
    return slug or fallback


def name_key(name: str) -> str:
    """A name as compared across sources: slugified, a legal-form word at the end dropped
    ("Scale AI, Inc." is "scale-ai"; "New Co Ltd" is "new-co")."""
    words = slugify(name, "").split("-")
    if len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    return "-".join(w for w in words if w)


@dataclass
class Directory:
    """Known entities and their identifiers and names; ids assigned during an import."""

    by_identifier: dict[Identifier, str] = field(default_factory=dict)
    by_name: dict[str, set[str]] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)  # registered before this import
    _keys: dict[str, str] = field(default_factory=dict)  # slug -> the key it was made from

    def add_known(self, entity: str, name: str, aliases: Iterable[str], ids: Iterable) -> None:
        """An entity registered outside this import (its latest registration wins)."""
        self.known.add(entity)
        for pair in [p for p, e in self.by_identifier.items() if e == entity]:
            del self.by_identifier[pair]
        for pair in ids:
            self.by_identifier[tuple(pair)] = entity
        self._keys[entity] = f"known:{entity}"
        for text in (name, *aliases):
            key = name_key(text)
            if key:
                self.by_name.setdefault(key, set()).add(entity)

    def add_registration(self, raw: bytes) -> Rejection | None:
        """One NDJSON line of ``--entities``: an `entity.registered` event (others: None)."""
        event = decode(raw)
        if isinstance(event, Rejection):
            return event
        if isinstance(event, EntityRegistered):
            d = event.data
            self.add_known(d.id, d.name, d.aliases, ((i.scheme, i.id) for i in d.identifiers))
        return None

    def match(self, identifiers: Iterable[Identifier]) -> tuple[str | None, list[str]]:
        """The id the identifiers name (the first identifier's, in the order given) and
        every other id they name: more than one id is a clash."""
        found: list[str] = []
        for pair in identifiers:
            entity = self.by_identifier.get(pair)
            if entity is not None and entity not in found:
                found.append(entity)
        return (found[0] if found else None), found[1:]

    def match_name(self, name: str) -> list[str]:
        """Ids whose name or alias compares equal to `name` (legal forms aside)."""
        return sorted(self.by_name.get(name_key(name), ()))

    def assign(self, base: str, key: str) -> str:
        """A new id `<base>-<digest of key>`, unique among the ids this directory knows."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        for size in (8, 12, 16, 24, 32, 64):
            slug = f"{base[: 127 - size]}-{digest[:size]}"
            owner = self._keys.get(slug)
            if owner is None or owner == key:
                self._keys[slug] = key
                return slug
        raise AssertionError("a SHA-256 collision")  # pragma: no cover

    def claim(self, entity: str, name: str, identifiers: Iterable[Identifier]) -> None:
        """Record what an import registered, so later records can land on it."""
        self._keys.setdefault(entity, f"assigned:{entity}")
        for pair in identifiers:
            self.by_identifier.setdefault(pair, entity)
        key = name_key(name)
        if key:
            self.by_name.setdefault(key, set()).add(entity)
