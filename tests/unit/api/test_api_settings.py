"""STAKEWATCH_API_TOKEN: unset or empty means no token; a token with spaces is refused at start."""

from __future__ import annotations

import pytest

from streams.api.auth import authorized
from streams.settings import SettingsError, load_settings


def test_an_empty_token_is_no_token(monkeypatch):
    monkeypatch.setenv("STAKEWATCH_API_TOKEN", "")
    assert load_settings().api_token is None


def test_the_token_is_kept_secret_in_reprs(monkeypatch):
    monkeypatch.setenv("STAKEWATCH_API_TOKEN", "t0ken-value")
    settings = load_settings()
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "t0ken-value"
    assert "t0ken-value" not in repr(settings)


@pytest.mark.parametrize("bad", [" padded", "new\nline", "naïve"])
def test_a_token_that_cannot_travel_in_a_header_fails_at_start(monkeypatch, bad):
    monkeypatch.setenv("STAKEWATCH_API_TOKEN", bad)
    with pytest.raises(SettingsError, match=r"^STAKEWATCH_API_TOKEN: "):
        load_settings()


def test_only_the_exact_bearer_header_is_authorized():
    assert authorized("Bearer abc", "abc")
    for header in (None, "", "abc", "bearer abc", "Bearer abcd", "Bearer ab", "Bearer  abc"):
        assert not authorized(header, "abc"), header
