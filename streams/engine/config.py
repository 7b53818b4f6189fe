"""The rule set: conflict threshold, severity rules and sensitive data classes (SPEC §3).

Severity rules are data, not code, so that a risk team can tighten them in a TOML file:
each severity lists clauses, a clause is terms joined by `&`, and the first severity with a
matching clause wins (`warning` when none does). Terms:

- `controlled`      — the rival controls the vendor;
- `sensitive`       — the client's active contracts with the vendor carry a sensitive class;
- `pending`         — the conflict exists only through announced holdings;
- `stake>=N`        — effective stake at least N percent (`>` also accepted).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from streams.engine.rules import SEVERITIES, meets_threshold

__all__ = [
    "DEFAULT_SENSITIVE",
    "DEFAULT_THRESHOLD",
    "ConfigError",
    "EngineConfig",
    "Facts",
    "SeverityRules",
    "load_config",
]

DEFAULT_THRESHOLD = 10.0
# Above this, 10⁴ paths per length stop bounding anything useful (docs/architecture.md).
MAX_PATH_HOLDINGS_LIMIT = 64
DEFAULT_SENSITIVE = frozenset(
    {
        "prototypes",
        "internal_documents",
        "confidential_data",
        "model_weights",
        "source_code",
        "user_data",
    }
)
DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "critical": ("controlled", "stake>=25 & sensitive"),
    "high": ("stake>=25", "sensitive"),
}


class ConfigError(ValueError):
    """A bad setting; the message starts with the setting's name."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a severity rule may look at for one conflict."""

    stake: float
    controlled: bool
    sensitive: bool
    pending: bool


@dataclass(frozen=True, slots=True)
class _Term:
    kind: str  # controlled | sensitive | pending | stake>= | stake>
    value: float = 0.0

    def holds(self, f: Facts) -> bool:
        if self.kind == "stake>=":
            return f.stake >= self.value
        if self.kind == "stake>":
            return f.stake > self.value
        return bool(getattr(f, self.kind))


_TERM = re.compile(r"^(controlled|sensitive|pending)$|^stake\s*(>=|>)\s*([0-9]+(?:\.[0-9]+)?)$")


def _parse_clause(text: str, where: str) -> tuple[_Term, ...]:
    terms = []
    for raw in text.split("&"):
        m = _TERM.match(raw.strip())
        if not m:
            raise ConfigError(
                f"{where}: cannot read {raw.strip()!r}; "
                "terms are controlled, sensitive, pending, stake>=N, joined by &"
            )
        if m.group(1):
            terms.append(_Term(m.group(1)))
        else:
            value = float(m.group(3))
            if value > 100:
                raise ConfigError(f"{where}: a stake is at most 100, got {value:g}")
            terms.append(_Term(f"stake{m.group(2)}", value))
    return tuple(terms)


@dataclass(frozen=True, slots=True)
class SeverityRules:
    """Ordered (severity, clauses) pairs; a clause holds when all its terms hold."""

    rules: tuple[tuple[str, tuple[tuple[_Term, ...], ...]], ...]

    @classmethod
    def parse(cls, spec: Mapping[str, Any], where: str = "severity") -> SeverityRules:
        rules = []
        for name, clauses in spec.items():
            if name not in SEVERITIES or name == "warning":
                raise ConfigError(
                    f"{where}.{name}: rules are set for 'critical' and 'high' "
                    "(warning is what remains)"
                )
            if isinstance(clauses, str) or not isinstance(clauses, list | tuple):
                raise ConfigError(f"{where}.{name}: expected a list of clauses")
            parsed = []
            for i, clause in enumerate(clauses):
                if not isinstance(clause, str):
                    raise ConfigError(f"{where}.{name}[{i}]: expected a string")
                parsed.append(_parse_clause(clause, f"{where}.{name}[{i}]"))
            rules.append((name, tuple(parsed)))
        rules.sort(key=lambda r: SEVERITIES.index(r[0]))
        return cls(tuple(rules))

    def reads(self, kind: str) -> bool:
        """Whether any clause has a term of this kind (`pending`, `controlled`, ...)."""
        return any(t.kind == kind for _, clauses in self.rules for c in clauses for t in c)

    def classify(self, facts: Facts) -> str:
        return _compiled(self.rules)(facts.stake, facts.controlled, facts.sensitive, facts.pending)

    def classify_values(
        self, stake: float, controlled: bool, sensitive: bool, pending: bool
    ) -> str:
        """`classify(Facts(...))` without building the Facts."""
        return _compiled(self.rules)(stake, controlled, sensitive, pending)


_Classifier = Callable[[float, bool, bool, bool], str]


@lru_cache(maxsize=64)
def _compiled(rules: tuple[tuple[str, tuple[tuple[_Term, ...], ...]], ...]) -> _Classifier:
    """The rules as one function of the four facts (first severity with a clause whose
    terms all hold; `warning` when none does)."""
    table = tuple(
        (severity, tuple(tuple((t.kind, t.value) for t in clause) for clause in clauses))
        for severity, clauses in rules
    )

    def classify(stake: float, controlled: bool, sensitive: bool, pending: bool) -> str:
        flags = {"controlled": controlled, "sensitive": sensitive, "pending": pending}
        for severity, clauses in table:
            for clause in clauses:
                for kind, value in clause:
                    if kind == "stake>=":
                        holds = stake >= value
                    elif kind == "stake>":
                        holds = stake > value
                    else:
                        holds = bool(flags[kind])
                    if not holds:
                        break
                else:
                    return severity
        return "warning"

    return classify


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything the engine's rules depend on; immutable, hashable, passed in."""

    threshold: float = DEFAULT_THRESHOLD
    sensitive_data_classes: frozenset[str] = DEFAULT_SENSITIVE
    severity: SeverityRules = field(default_factory=lambda: SeverityRules.parse(DEFAULT_RULES))
    spend_window_days: int = 365
    path_floor: float = 0.01
    # SPEC §2: a path of more holdings is not counted; with pro rata counting of
    # over-allocated assets this bounds the work one event can cause (docs/architecture.md).
    max_path_holdings: int = 16

    def meets_threshold(self, stake: float) -> bool:
        """``meets_threshold(stake, self.threshold)``."""
        return meets_threshold(stake, self.threshold)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 100:
            raise ConfigError(f"threshold: must be in (0, 100], got {self.threshold!r}")
        if self.spend_window_days < 1:
            raise ConfigError(f"spend_window_days: must be >= 1, got {self.spend_window_days!r}")
        if not 0 <= self.path_floor < self.threshold:
            raise ConfigError(f"path_floor: must be in [0, threshold), got {self.path_floor!r}")
        if not 1 <= self.max_path_holdings <= MAX_PATH_HOLDINGS_LIMIT:
            raise ConfigError(
                f"max_path_holdings: must be in 1..{MAX_PATH_HOLDINGS_LIMIT}, "
                f"got {self.max_path_holdings!r}"
            )

    def fingerprint(self) -> str:
        """A stable digest of every rule setting: a snapshot made under other rules is
        not restored (its state would answer by the old rules).

        Derived from every field of the dataclass, so a setting added later is covered
        without anyone remembering to add it here (tests/unit/engine/test_config.py)."""
        canonical = json.dumps([_canonical(getattr(self, f.name)) for f in fields(self)])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> EngineConfig:
        known = {
            "threshold",
            "sensitive_data_classes",
            "severity",
            "spend_window_days",
            "max_path_holdings",
        }
        for key in doc:
            if key == "max_future_days":
                raise ConfigError(
                    "max_future_days: no longer a setting — events are never rejected for "
                    "how far they lie after the watermark; `future` means more than one day "
                    "after the clock when read (docs/rules.md)"
                )
            if key not in known:
                raise ConfigError(f"{key}: unknown setting (known: {', '.join(sorted(known))})")
        kwargs: dict[str, Any] = {}
        if "threshold" in doc:
            kwargs["threshold"] = _number(doc["threshold"], "threshold")
        if "spend_window_days" in doc:
            days = doc["spend_window_days"]
            if not isinstance(days, int) or isinstance(days, bool):
                raise ConfigError(f"spend_window_days: expected a whole number, got {days!r}")
            kwargs["spend_window_days"] = days
        if "max_path_holdings" in doc:
            limit = doc["max_path_holdings"]
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise ConfigError(f"max_path_holdings: expected a whole number, got {limit!r}")
            kwargs["max_path_holdings"] = limit
        if "sensitive_data_classes" in doc:
            classes = doc["sensitive_data_classes"]
            if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
                raise ConfigError("sensitive_data_classes: expected a list of non-empty strings")
            kwargs["sensitive_data_classes"] = frozenset(classes)
        if "severity" in doc:
            if not isinstance(doc["severity"], Mapping):
                raise ConfigError("severity: expected a table with critical/high clause lists")
            merged = {**DEFAULT_RULES, **doc["severity"]}
            kwargs["severity"] = SeverityRules.parse(merged)
        return cls(**kwargs)


def _canonical(value: object) -> object:
    """A setting as JSON can carry it, the same for equal settings: sets sorted, severity
    rules by their repr (a tuple of frozen dataclasses), numbers and strings as they are."""
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def load_config(path: str | Path | None) -> EngineConfig:
    """Read the `[rules]` table of a TOML file (or the whole file if it has none)."""
    if path is None:
        return EngineConfig()
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from exc
    rules = doc.get("rules", doc)
    if not isinstance(rules, Mapping):
        raise ConfigError("rules: expected a table")
    try:
        return EngineConfig.from_mapping(rules)
    except ConfigError as exc:
        if "rules" in doc:
            raise ConfigError(f"rules.{exc}") from None
        raise
