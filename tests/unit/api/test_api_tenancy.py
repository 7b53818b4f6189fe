"""Scoped API tokens: the tokens file, the checks at start-up, and what a scope sees.

The walk over every endpoint with two tenants runs against a real worker
(tests/integration/test_tenancy.py); these are the parts that need no broker.
"""

from __future__ import annotations

import hashlib

import pytest

from streams import query
from streams.api.auth import Access
from streams.api.tokens import TokenFileError, parse_tokens
from streams.engine import Engine
from streams.query.scope import Scope
from streams.settings import SettingsError, load_settings
from tests.tenants import world

TOKEN_A, TOKEN_B = "token-for-acme", "token-for-everything"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


FILE = f"""
[[token]]
sha256 = "{sha(TOKEN_A)}"
clients = ["acme"]

[[token]]
sha256 = "{sha(TOKEN_B).upper()}"
clients = ["*"]
write = true
"""


def test_the_tokens_file_gives_each_hash_its_clients_and_write_flag():
    scoped, everything = parse_tokens(FILE)
    assert scoped.scope == Scope(frozenset({"acme"})) and not scoped.write
    assert everything.scope.everything and everything.write
    access = Access.of(None, (scoped, everything))
    assert access.grant(f"Bearer {TOKEN_A}") is scoped
    assert access.grant(f"Bearer {TOKEN_B}") is everything
    for header in (None, "", TOKEN_A, f"bearer {TOKEN_A}", f"Bearer {TOKEN_A} ", "Bearer "):
        assert access.grant(header) is None, header


def test_the_single_token_still_sees_everything_beside_the_file():
    access = Access.of("legacy", parse_tokens(FILE))
    grant = access.grant("Bearer legacy")
    assert grant is not None and grant.scope.everything and grant.write


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "token: no [[token]] entries"),
        ("[[token]]\nclients = ['acme']", "token[0].sha256: required"),
        ("[[token]]\nsha256 = 'abc'\nclients = ['acme']", "token[0].sha256: not a SHA-256"),
        (f"[[token]]\nsha256 = '{sha('x')}'\nclients = []", "token[0].clients: expected"),
        (f"[[token]]\nsha256 = '{sha('x')}'\nclients = ['*', 'acme']", 'token[0].clients: "*"'),
        (f"[[token]]\nsha256 = '{sha('x')}'\nclients = ['Acme']", "token[0].clients: 'Acme'"),
        (f"[[token]]\nsha256 = '{sha('x')}'\nclients = ['a']\nwrite = 'yes'", "token[0].write"),
        (f"[[token]]\nsha256 = '{sha('x')}'\nclient = ['a']", "token[0].clients: required"),
        (
            f"[[token]]\nsha256 = '{sha('x')}'\nclients = ['a']\n"
            f"[[token]]\nsha256 = '{sha('x')}'\nclients = ['b']",
            "token[1].sha256: the same token as token[0]",
        ),
        ("[[token]\n", "invalid TOML"),
    ],
)
def test_a_bad_tokens_file_says_which_entry_and_why(text, message):
    with pytest.raises(TokenFileError) as caught:
        parse_tokens(text)
    assert str(caught.value).startswith(message)
    assert sha("x") not in str(caught.value)


def test_a_bad_tokens_file_fails_at_start_naming_the_setting(monkeypatch, tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text("[[token]]\nsha256 = 'nope'\nclients = ['acme']\n")
    monkeypatch.setenv("STAKEWATCH_API_TOKENS", str(path))
    with pytest.raises(SettingsError, match=r"^STAKEWATCH_API_TOKENS: token\[0\]\.sha256: "):
        load_settings()
    monkeypatch.setenv("STAKEWATCH_API_TOKENS", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match=r"^STAKEWATCH_API_TOKENS: cannot read"):
        load_settings()
    path.write_text(FILE)
    monkeypatch.setenv("STAKEWATCH_API_TOKENS", str(path))
    grant = load_settings().web_access().grant(f"Bearer {TOKEN_A}")
    assert grant is not None and grant.scope.clients == {"acme"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "stakewatch.internal"])
def test_the_worker_refuses_a_network_address_without_a_token(monkeypatch, host):
    monkeypatch.setenv("STAKEWATCH_WEB_HOST", host)
    with pytest.raises(SettingsError, match=r"^STAKEWATCH_WEB_HOST: .*STAKEWATCH_API_TOKEN"):
        load_settings().web_access()
    monkeypatch.setenv("STAKEWATCH_API_TOKEN", "a-token")
    assert load_settings().web_access().required


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_needs_no_token(monkeypatch, host):
    monkeypatch.setenv("STAKEWATCH_WEB_HOST", host)
    assert not load_settings().web_access().required


def test_the_replication_factor_is_a_setting(monkeypatch):
    assert load_settings().replication_factor == 1
    monkeypatch.setenv("STAKEWATCH_REPLICATION_FACTOR", "3")
    assert load_settings().replication_factor == 3
    monkeypatch.setenv("STAKEWATCH_REPLICATION_FACTOR", "0")
    with pytest.raises(SettingsError, match=r"^STAKEWATCH_REPLICATION_FACTOR: "):
        load_settings()


# -- what a scope sees ----------------------------------------------------------------------


def state():
    lines, last = world()
    return query.load_lines(lines + last)


def test_keeping_one_client_equals_never_having_seen_the_others():
    """The scoped what-if's copy: the same relationships and conflicts as an engine fed
    only the market and acme's events (and no applied ids, so no duplicate oracle)."""
    lines, last = world()
    pruned = state().engine
    pruned.keep_clients(frozenset({"acme"}))
    alone = query.load_lines(line for line in lines + last if b"globex" not in line).engine
    assert pruned.open == alone.open
    assert set(pruned.rel.pairs) == set(alone.rel.pairs)
    assert set(pruned.rel.contracts) == set(alone.rel.contracts)
    assert pruned.rel.by_category == alone.rel.by_category
    assert {v: set(pruned.rel.clients_of(v)) for v in pruned.rel.by_vendor} == {
        v: set(alone.rel.clients_of(v)) for v in alone.rel.by_vendor
    }
    assert len(pruned.seen) == 0
    later = b'{"specversion":"1.0","id":"x","source":"/t","type":"spend.recorded",'
    later += b'"time":"2027-01-01T00:00:00Z","data":{"client":"acme","vendor":"datafarm",'
    later += b'"amount":5}}'
    for engine in (pruned, alone):  # the lapse queues hold only acme's contracts now
        engine.process(later)
    assert pruned.open == alone.open


def test_a_scoped_what_if_answers_another_clients_contract_as_an_unknown_one():
    engine = state().engine
    acme = Scope.of(["acme"])

    def ask(contract: str) -> str:
        event = {"type": "contract.terminated", "data": {"contract_id": contract}}
        result = query.what_if(engine, [event], acme)
        return str(result).replace(contract, "<ID>")

    assert ask("c-globex-1") == ask("c-nobody-1")
    assert "unknown_contract" in ask("c-globex-1")
    assert "globex" not in str(query.what_if(engine, [_stake(60)], acme))
    everything = query.what_if(engine, [_stake(60)])
    assert {c["dedup_key"] for c in everything["changed"]} == {
        "acme|datafarm|bigco",
        "globex|datafarm|bigco",
    }


def test_a_scoped_what_if_refuses_events_for_other_clients_alike():
    engine = Engine()
    acme = Scope.of(["acme"])
    for client in ("globex", "nobody"):
        event = {
            "type": "spend.recorded",
            "time": "2025-01-01T00:00:00Z",
            "data": {"client": client, "vendor": "v", "amount": 1},
        }
        with pytest.raises(query.BadHypothesis) as caught:
            query.what_if(engine, [event], acme)
        assert str(caught.value) == (
            f"events[0]: data.client: {client!r} is not a client this token may see"
        )


def _stake(percent: float) -> dict:
    data = {"owner": "bigco", "asset": "datafarm", "percent": percent, "status": "closed"}
    return {"type": "ownership.stake", "data": data}
