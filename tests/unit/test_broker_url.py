"""``parse_broker_url``: what STAKEWATCH_BROKER accepts, and errors that name it."""

from __future__ import annotations

import pytest

from streams.kafka.broker import parse_broker_url


@pytest.mark.parametrize(
    ("value", "bootstrap"),
    [
        ("kafka://127.0.0.1:9092", "127.0.0.1:9092"),
        ("localhost:9092", "localhost:9092"),
        ("a:1,b:2", "a:1,b:2"),
        ("kafka://a:1;b:2", "a:1,b:2"),  # faust's separator
        (" KAFKA://broker.internal:19092 ", "broker.internal:19092"),
        ("[::1]:9092", "[::1]:9092"),
        ("a:09092", "a:9092"),
    ],
)
def test_accepts_faust_and_aiokafka_forms(value: str, bootstrap: str) -> None:
    """Both the faust URL and a bare host list give an aiokafka bootstrap string."""
    assert parse_broker_url(value) == bootstrap


@pytest.mark.parametrize(
    "value",
    [
        "",
        "kafka://",
        "localhost",
        "localhost:",
        ":9092",
        "a:1,,b:2",
        "a:port",
        "a:0",
        "a:65536",
        "http://a:9092",
        "kafka://user@a:9092",
        "a:1/path",
        "::1:9092",
    ],
)
def test_bad_values_name_the_setting(value: str) -> None:
    """A bad address is a ValueError that names STAKEWATCH_BROKER and quotes the value."""
    with pytest.raises(ValueError, match="STAKEWATCH_BROKER") as info:
        parse_broker_url(value)
    assert repr(value) in str(info.value)


def test_error_names_another_setting_when_asked() -> None:
    """Callers parsing another setting get that setting's name in the error."""
    with pytest.raises(ValueError, match="MY_BROKER"):
        parse_broker_url("nope", setting="MY_BROKER")
