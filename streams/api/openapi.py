"""The OpenAPI 3 document of ``/v1``, written by hand next to the routes it describes.

A unit test checks that every route of the app is here and every path here is a route, and
a schemathesis run checks the answers against these schemas.
"""

from __future__ import annotations

from typing import Any

from streams.engine import SEVERITIES

__all__ = ["openapi_document"]

_SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,127}$"}
_TIME = {"type": "string", "nullable": True, "description": "RFC 3339, UTC"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_NAMES = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "display names of the registered entities mentioned (others: by id)",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


_PATH_STAKE = _obj({"path": _STR_LIST, "stake": {"type": "number"}})
_FIGURES = {
    "dedup_key": {"type": "string"},
    "client": {"type": "string"},
    "vendor": {"type": "string"},
    "rival": {"type": "string"},
    "stake": {"type": "number"},
    "controlled": {"type": "boolean"},
    "pending": {"type": "boolean"},
    "paths": {"type": "array", "items": _ref("PathStake")},
    "active_contracts": _STR_LIST,
    "data_classes": _STR_LIST,
    "spend_365d": {"type": "number"},
}
_SEVERITY = {"type": "string", "enum": list(SEVERITIES)}
_FIGURES_OPEN = _obj(
    {**_FIGURES, "open": {"type": "boolean"}, "severity": {**_SEVERITY, "nullable": True}}
)
_CONFLICT = _obj(
    {
        **_FIGURES,
        "severity": _SEVERITY,
        "status": {"type": "string", "enum": ["firing"]},
        "event_id": {"type": "string"},
        "event_time": {"type": "string"},
        "since_event": {"type": "string"},
        "since_time": {"type": "string"},
    }
)
_EDGE = {
    "type": "object",
    "nullable": True,
    "properties": {
        "percent": {"type": "number", "description": "effective percent, as claimed"},
        "counted": {
            "type": "number",
            "description": "the percent it counts for: pro rata where the asset's holdings "
            "claim more than 100 %",
        },
        "held": {"type": "number", "nullable": True},
        "pending": {"type": "number", "nullable": True},
    },
}
_OWNED_PATH = _obj({"path": _STR_LIST, "stake": {"type": "number"}, "pending": {"type": "boolean"}})
_EVIDENCE = _obj(
    {
        "id": {"type": "string"},
        "source": {"type": "string"},
        "time": {"type": "string"},
        "type": {"type": "string"},
    }
)

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": {"type": "string", "description": "one line"}}),
    "PathStake": _PATH_STAKE,
    "Evidence": _EVIDENCE,
    "Figures": _FIGURES_OPEN,
    "Conflict": _CONFLICT,
    "ConflictList": _obj(
        {
            "ready": {"type": "boolean", "description": "false while the worker catches up"},
            "watermark": _TIME,
            "total": {"type": "integer", "description": "matching conflicts before `limit`"},
            "conflicts": {"type": "array", "items": _ref("Conflict")},
            "names": _NAMES,
        }
    ),
    "ResolvedList": _obj(
        {
            "resolved": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "the conflict's last firing record, status resolved",
                    "properties": {
                        "dedup_key": {"type": "string"},
                        "status": {"type": "string", "enum": ["resolved"]},
                        "resolved_by": {
                            **_TIME,
                            "description": "the watermark at which this worker saw it gone "
                            "(it resolved at or before then)",
                        },
                    },
                    "required": ["dedup_key", "status", "resolved_by"],
                },
            }
        }
    ),
    "Exposure": _obj(
        {
            "client": {"type": "string"},
            "watermark": _TIME,
            "threshold": {"type": "number"},
            "rivals": {
                "type": "array",
                "items": _obj(
                    {"rival": {"type": "string"}, "sector": {"type": "string", "nullable": True}}
                ),
            },
            "vendors": {
                "type": "array",
                "items": _obj(
                    {
                        "vendor": {"type": "string"},
                        "active": {"type": "boolean"},
                        "contracts_ever": {"type": "integer"},
                        "active_contracts": _STR_LIST,
                        "categories": _STR_LIST,
                        "data_classes": _STR_LIST,
                        "sensitive_data_classes": _STR_LIST,
                        "spend_365d": {"type": "number"},
                        "rivals": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "rival": {"type": "string"},
                                    "sector": {"type": "string", "nullable": True},
                                    "stake": {"type": "number"},
                                    "held_stake": {"type": "number"},
                                    "controlled": {"type": "boolean"},
                                    "pending": {"type": "boolean"},
                                    "at_or_above_threshold": {"type": "boolean"},
                                    "conflict_open": {"type": "boolean"},
                                    "severity": {**_SEVERITY, "nullable": True},
                                    "paths": {"type": "array", "items": _ref("PathStake")},
                                }
                            ),
                        },
                    }
                ),
            },
            "names": _NAMES,
        }
    ),
    "Entity": _obj(
        {
            "entity": {"type": "string"},
            "watermark": _TIME,
            "registered": {
                "type": "boolean",
                "description": "false: events name the entity, none registered it",
            },
            "name": {"type": "string", "nullable": True},
            "aliases": _STR_LIST,
            "identifiers": {
                "type": "array",
                "items": _obj(
                    {
                        "scheme": {"type": "string", "description": "org-id.guide code"},
                        "id": {"type": "string"},
                    }
                ),
            },
        }
    ),
    "PostedEvents": _obj(
        {
            "accepted": {"type": "integer", "description": "events published"},
            "ids": _STR_LIST,
            "duplicates": {
                "type": "array",
                "items": {"type": "string"},
                "description": "ids already applied (or repeated in the body): not published",
            },
        }
    ),
    "PostedEventErrors": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "events": {
                "type": "array",
                "items": _obj(
                    {
                        "index": {"type": "integer"},
                        "code": {"type": "string"},
                        "reason": {"type": "string"},
                    }
                ),
                "description": "each event that does not decode (absent for body errors)",
            },
        },
    },
    "Owners": _obj(
        {
            "entity": {"type": "string"},
            "watermark": _TIME,
            "allocation": _obj(
                {
                    "claimed": {"type": "number"},
                    "claimed_held": {"type": "number"},
                    "overallocated": {"type": "boolean"},
                }
            ),
            "owners": {
                "type": "array",
                "items": _obj(
                    {
                        "owner": {"type": "string"},
                        "stake": {"type": "number"},
                        "controls": {"type": "boolean"},
                        "direct": _EDGE,
                        "paths": {"type": "array", "items": _OWNED_PATH},
                    }
                ),
            },
            "names": _NAMES,
        }
    ),
    "Holdings": _obj(
        {
            "entity": {"type": "string"},
            "watermark": _TIME,
            "holdings": {
                "type": "array",
                "items": _obj(
                    {
                        "asset": {"type": "string"},
                        "stake": {"type": "number"},
                        "held_stake": {"type": "number"},
                        "controlled": {"type": "boolean"},
                        "direct": _EDGE,
                        "paths": {"type": "array", "items": _OWNED_PATH},
                    }
                ),
            },
            "names": _NAMES,
        }
    ),
    "Explanation": {
        **_obj(
            {
                "dedup_key": {"type": "string"},
                "client": {"type": "string"},
                "vendor": {"type": "string"},
                "rival": {"type": "string"},
                "watermark": _TIME,
                "conflict": {"type": "boolean", "description": "SPEC §3's conditions all hold"},
                "open": {"type": "boolean", "description": "the engine holds it open"},
                "severity": {**_SEVERITY, "nullable": True},
                "since": {
                    "type": "object",
                    "nullable": True,
                    "properties": {"event_id": {"type": "string"}, "time": {"type": "string"}},
                },
                "figures": {"type": "object"},
                "conditions": {
                    "type": "array",
                    "items": _obj(
                        {
                            "condition": {"type": "string"},
                            "holds": {"type": "boolean"},
                            "detail": {"type": "string", "nullable": True},
                            "evidence": {"type": "array", "items": _ref("Evidence")},
                        }
                    ),
                },
                "stake": {
                    "type": "object",
                    "description": "stake, held_stake, pending and each path with its "
                    "holdings (percent, held, pending, status) and the events behind them",
                },
                "control": {"type": "object"},
                "relationship": {
                    "type": "object",
                    "description": "contracts (with their events), data classes, spend",
                },
                "rules": {
                    "type": "object",
                    "description": "facts, every severity clause with whether it holds, and "
                    "the one that matched",
                    "properties": {
                        "facts": {"type": "object"},
                        "severity": _SEVERITY,
                        "matched": _obj({"severity": _SEVERITY, "clause": {"type": "string"}}),
                        "rules": {"type": "array", "items": {"type": "object"}},
                        "applies": {"type": "boolean"},
                    },
                    "required": ["facts", "severity", "matched", "rules", "applies"],
                },
                "names": _NAMES,
            }
        ),
    },
    "HypotheticalEvent": {
        "type": "object",
        "description": "a CloudEvent (SPEC §1); specversion, id, source and time may be left "
        "out (defaults: 1.0, what-if-<index>, /what-if, the watermark)",
        "properties": {
            "type": {"type": "string"},
            "data": {"type": "object"},
            "id": {"type": "string"},
            "source": {"type": "string"},
            "time": {"type": "string"},
            "specversion": {"type": "string"},
        },
        "required": ["type", "data"],
    },
    "WhatIfChange": _obj(
        {
            "dedup_key": {"type": "string"},
            "before": {**_FIGURES_OPEN, "nullable": True},
            "after": _ref("Figures"),
        }
    ),
    "WhatIfResult": _obj(
        {
            "watermark": _obj({"before": _TIME, "after": _TIME}),
            "applied": {"type": "integer"},
            "rejected": {
                "type": "array",
                "description": "events the state refused (stale, unknown contract, duplicate)",
                "items": _obj(
                    {
                        "index": {"type": "integer"},
                        "id": {"type": "string"},
                        "reason": {"type": "string"},
                    }
                ),
            },
            "opened": {"type": "array", "items": _ref("WhatIfChange")},
            "changed": {"type": "array", "items": _ref("WhatIfChange")},
            "closed": {"type": "array", "items": _ref("WhatIfChange")},
            "records": {
                "type": "array",
                "items": {"type": "object"},
                "description": "the alert records the events would emit, in order",
            },
        }
    ),
    "Alternatives": _obj(
        {
            "client": {"type": "string"},
            "category": {"type": "string"},
            "watermark": _TIME,
            "threshold": {"type": "number"},
            "alternatives": {"type": "array", "items": _ref("Vendor")},
            "excluded": {"type": "array", "items": _ref("Vendor")},
            "names": _NAMES,
        }
    ),
    "Vendor": _obj(
        {
            "vendor": {"type": "string"},
            "clients": {"type": "integer", "description": "clients active with it now"},
            "already_used": {"type": "boolean"},
            "rival_stakes": {
                "type": "array",
                "items": _obj(
                    {
                        "rival": {"type": "string"},
                        "stake": {"type": "number"},
                        "controlled": {"type": "boolean"},
                        "at_or_above_threshold": {"type": "boolean"},
                    }
                ),
            },
            "owners": {
                "type": "array",
                "items": _obj({"owner": {"type": "string"}, "percent": {"type": "number"}}),
            },
        }
    ),
}


def _answer(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_ERR = {"content": {"application/json": {"schema": _ref("Error")}}}
_400 = {"400": {"description": "a bad parameter (one-line reason)", **_ERR}}
_401 = {"401": {"description": "missing or wrong bearer token", **_ERR}}
_404 = {"404": {"description": "an unknown entity (or category)", **_ERR}}


# the seed scenario's ids (docs/api.md examples; schemathesis starts from them)
_EXAMPLES = {
    "client": "google",
    "vendor": "scale-ai",
    "rival": "meta",
    "id": "scale-ai",
    "category": "data-labeling",
    "severity": "critical",
}


def _query(name: str, schema: dict[str, Any], required: bool = False, description: str = ""):
    param = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }
    if name in _EXAMPLES:
        param["example"] = _EXAMPLES[name]
    return param


def _path(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": _SLUG,
        "example": _EXAMPLES[name],
    }


def _get(summary: str, params: list, answer: dict, errors: dict) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": answer, **errors, **_401},
        }
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Stakewatch API",
            "version": "1",
            "description": "Ask the monitor: open conflicts, exposure, owners, explanations, "
            "what-if and neutral alternatives (docs/api.md). Every worker holds the whole "
            "state, so any worker answers completely.",
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/v1/conflicts": _get(
                "Open conflicts, most severe first (figures at the watermark)",
                [
                    _query("client", _SLUG),
                    _query("vendor", _SLUG),
                    _query("rival", _SLUG),
                    _query("severity", _SEVERITY),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}),
                ],
                _answer("ConflictList"),
                {**_400, **_404},
            ),
            "/v1/conflicts/resolved": _get(
                "Conflicts this worker saw resolve recently, newest first (kept in memory)",
                [_query("limit", {"type": "integer", "minimum": 1, "maximum": 100})],
                _answer("ResolvedList"),
                _400,
            ),
            "/v1/exposure/{client}": _get(
                "Every vendor of a client with each rival's stake, control and the "
                "relationship's figures",
                [_path("client")],
                _answer("Exposure"),
                {**_400, **_404},
            ),
            "/v1/entities/{id}": _get(
                "An entity's display name, aliases and registry identifiers",
                [_path("id")],
                _answer("Entity"),
                {**_400, **_404},
            ),
            "/v1/entities/{id}/owners": _get(
                "Effective owners of an entity, with their paths",
                [_path("id")],
                _answer("Owners"),
                {**_400, **_404},
            ),
            "/v1/entities/{id}/holdings": _get(
                "Everything an entity reaches, with effective stakes and paths",
                [_path("id")],
                _answer("Holdings"),
                {**_400, **_404},
            ),
            "/v1/explain": _get(
                "Why (client, vendor, rival) is a conflict, or why not",
                [
                    _query("client", _SLUG, True),
                    _query("vendor", _SLUG, True),
                    _query("rival", _SLUG, True),
                ],
                _answer("Explanation"),
                {**_400, **_404},
            ),
            "/v1/events": {
                "post": {
                    "summary": "Publish CloudEvents to their topics (all or nothing; needs a "
                    "token with write rights)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/cloudevents-batch+json": {
                                "schema": {
                                    "type": "array",
                                    "items": {},
                                    "description": "at most 1000 events (more: 413)",
                                }
                            },
                            "application/cloudevents+json": {"schema": {"type": "object"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "202": _answer("PostedEvents"),
                        "400": {
                            "description": "an event that does not decode: none published",
                            "content": {"application/json": {"schema": _ref("PostedEventErrors")}},
                        },
                        **_401,
                        "403": {"description": "the token may not write", **_ERR},
                        "413": {"description": "over 1 MiB or 1000 events", **_ERR},
                        "415": {"description": "another media type", **_ERR},
                    },
                }
            },
            "/v1/what-if": {
                "post": {
                    "summary": "Apply hypothetical events to a copy of the state: conflicts "
                    "that would open, change and close (live state is never touched)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {
                                            "type": "array",
                                            "maxItems": 1000,
                                            "items": _ref("HypotheticalEvent"),
                                        },
                                        {
                                            **_obj(
                                                {
                                                    "events": {
                                                        "type": "array",
                                                        "maxItems": 1000,
                                                        "items": _ref("HypotheticalEvent"),
                                                    }
                                                }
                                            ),
                                            "additionalProperties": False,
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _answer("WhatIfResult"),
                        "400": {"description": "a body or an event that does not decode", **_ERR},
                        **_401,
                        "413": {"description": "body over 1 MiB", **_ERR},
                    },
                }
            },
            "/v1/alternatives": _get(
                "Vendors seen in a category with no rival of the client at or above the threshold",
                [
                    _query("client", _SLUG, True),
                    _query(
                        "category",
                        {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 256,
                            "pattern": "^[^\\x00-\\x1f\\x7f]+$",
                        },
                        True,
                        "a contract category, e.g. data-labeling",
                    ),
                ],
                _answer("Alternatives"),
                {**_400, **_404},
            ),
            "/v1/stream": {
                "get": {
                    "summary": "Server-sent events: `hello` (watermark), then one `alert` per "
                    "conflict that fires, changes or resolves",
                    "responses": {
                        "200": {
                            "description": "an event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_401,
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_401,
                    },
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "required when STAKEWATCH_API_TOKEN or STAKEWATCH_API_TOKENS "
                    "is set; a scoped token sees only its clients' world (docs/security.md)",
                }
            },
        },
    }
