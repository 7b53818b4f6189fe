"""Read-only questions over the engine's state, as plain dicts: the API and the CLI twins.

Every function takes an ``Engine`` (and, to cite events, a ``Provenance``) and leaves it as
it was; ``what_if`` works on a copy. See docs/api.md for the shapes.
"""

from streams.query.alternatives import alternatives
from streams.query.common import SLUG, NotFound, conflict_figures
from streams.query.conflicts import client_exposure, open_conflicts
from streams.query.entities import entity, holdings, owners
from streams.query.explain import explain
from streams.query.offline import State, load_lines
from streams.query.whatif import MAX_EVENTS, BadHypothesis, what_if, what_if_snapshot

__all__ = [
    "MAX_EVENTS",
    "SLUG",
    "BadHypothesis",
    "NotFound",
    "State",
    "alternatives",
    "client_exposure",
    "conflict_figures",
    "entity",
    "explain",
    "holdings",
    "load_lines",
    "open_conflicts",
    "owners",
    "what_if",
    "what_if_snapshot",
]
