"""Which clients a caller may see: the tenancy boundary every query applies.

One monitor watches many clients, and each client's contracts, spend, data classes and
conflicts are its own secrets. Ownership (who holds what) and the entity registry are market
facts and stay visible to everyone; a rivalry belongs to the clients it names. A scoped
caller asking about another client's id gets exactly what it would get for an id nobody
ever named, so an answer never tells it that the other client exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["EVERYTHING", "Scope"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The clients a caller may see; ``clients=None`` means every client."""

    clients: frozenset[str] | None = None

    @classmethod
    def of(cls, clients: Iterable[str] | None) -> Scope:
        return cls(None if clients is None else frozenset(clients))

    @property
    def everything(self) -> bool:
        return self.clients is None

    def sees(self, client: str) -> bool:
        return self.clients is None or client in self.clients


EVERYTHING = Scope()
