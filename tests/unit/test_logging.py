"""Logging: JSON lines, levels, stdlib routing, record context, and secrets that never leak."""

from __future__ import annotations

import io
import json
import logging
import urllib.parse

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from mode.utils.logging import setup_logging as mode_setup_logging

from streams.logging import (
    LEVEL_SETTING,
    MASK,
    Redactor,
    add_secrets,
    bind_record,
    configure_logging,
    get_logger,
    record_context,
)

SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/wEbHoOkSeCrEt42"
ROUTING_KEY = "R0UT1NG-KEY-abcdef0123456789"
WEBHOOK_SECRET = 'hmac"sec\\ret-value'  # quotes and backslashes are escaped in JSON
ENV = {
    "STAKEWATCH_SLACK_WEBHOOK_URL": SLACK_URL,
    "STAKEWATCH_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
    "STAKEWATCH_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "STAKEWATCH_LOG_LEVEL": "INFO",
}


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def configure(env=ENV, **kwargs) -> io.StringIO:
    stream = kwargs.pop("stream", None) or io.StringIO()
    configure_logging(stream=stream, environ=env, **kwargs)
    return stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_secrets_from_the_environment_never_reach_the_output() -> None:
    out = configure()
    log = get_logger("stakewatch.test")
    log.info(
        "delivering",
        url=SLACK_URL,
        note=f"key {ROUTING_KEY} and secret {WEBHOOK_SECRET} inline",
        nested={"deep": [ROUTING_KEY, {"x": (SLACK_URL,)}]},
        obj=RuntimeError(f"POST {SLACK_URL} failed"),
        quoted=f"https://events.example/?s={urllib.parse.quote(WEBHOOK_SECRET, safe='')}",
    )
    try:
        raise ConnectionError(f"cannot reach {SLACK_URL} with {ROUTING_KEY} / {WEBHOOK_SECRET}")
    except ConnectionError:
        log.exception("delivery failed")
    logging.getLogger("aiokafka").warning("stdlib saw %s and %s", ROUTING_KEY, WEBHOOK_SECRET)

    text = out.getvalue()
    assert len(lines(out)) == 3
    for secret in (SLACK_URL, ROUTING_KEY, WEBHOOK_SECRET, "wEbHoOkSeCrEt42", "sec\\\\ret"):
        assert secret not in text
    assert "R0UT1NG" not in text
    assert urllib.parse.quote(WEBHOOK_SECRET, safe="") not in text
    assert MASK in text
    assert "ConnectionError" in text  # the traceback is kept, only the secrets are masked


def test_secret_shaped_values_are_masked_without_being_configured() -> None:
    out = configure(env={})
    log = get_logger("t")
    log.warning(
        "request",
        target="https://hooks.slack.com/services/TX/BX/unconfigured",
        headers={"Authorization": "Bearer abc.def.ghi", "Content-Type": "application/json"},
        routing_key="rk-1234",
        api_token="tok-5678",
        password="hunter22",
        dedup_key="google|scale-ai|meta",
        error="HTTP 400: {'Authorization': 'Token token=zzz999'} routing_key=rk-inline&x=1",
    )
    (line,) = lines(out)
    assert line["target"] == MASK
    assert line["headers"] == {"Authorization": MASK, "Content-Type": "application/json"}
    assert line["routing_key"] == line["api_token"] == line["password"] == MASK
    assert line["dedup_key"] == "google|scale-ai|meta"  # a key, not a secret
    for leaked in ("unconfigured", "abc.def.ghi", "zzz999", "rk-1234", "rk-inline", "hunter22"):
        assert leaked not in out.getvalue()


def test_secrets_added_after_configuration_are_masked_too() -> None:
    out = configure(env={})
    add_secrets("from-a-toml-file-0042", None, "")
    get_logger("t").info("loaded from-a-toml-file-0042")
    assert "from-a-toml-file-0042" not in out.getvalue()


def test_a_value_logged_before_it_became_a_secret_is_masked_after() -> None:
    """The redactor caches short texts' verdicts; a new secret clears them."""
    out = configure(env={})
    log = get_logger("t")
    log.info("loaded", source="from-a-toml-file-0042")
    add_secrets("from-a-toml-file-0042")
    log.info("loaded", source="from-a-toml-file-0042")
    first, second = lines(out)
    assert first["source"] == "from-a-toml-file-0042"
    assert second["source"] == MASK


def test_keys_are_masked_like_values() -> None:
    """JSON lines are not masked again once rendered, so a secret in a key is masked too."""
    out = configure()
    get_logger("t").info("keys", **{f"for {ROUTING_KEY}": 1, "token": None, "api_token": "x"})
    (line,) = lines(out)
    assert ROUTING_KEY not in out.getvalue()
    assert line[f"for {MASK}"] == 1
    assert line["token"] is None  # a secret-named key with nothing in it says so
    assert line["api_token"] == MASK


def test_short_or_empty_values_are_not_treated_as_secrets() -> None:
    redactor = Redactor.from_environ({"STAKEWATCH_X_TOKEN": "on", "OTHER_KEY": "", "PATH": "/usr"})
    assert redactor.redact_text("turn it on in /usr") == "turn it on in /usr"


def test_every_line_is_a_json_object_with_level_time_logger_and_event() -> None:
    out = configure()
    get_logger("stakewatch.worker").info("started", workers=1)
    logging.getLogger("faust.worker").info("faust says %s", "hello")
    records = lines(out)
    assert [r["event"] for r in records] == ["started", "faust says hello"]
    for r in records:
        assert {"event", "level", "logger", "timestamp"} <= set(r)
        assert r["timestamp"].endswith("Z")
    assert records[1]["logger"] == "faust.worker"
    assert records[0]["workers"] == 1


def test_record_coordinates_are_bound_to_every_line_in_the_context() -> None:
    out = configure()
    log = get_logger("agents")
    with record_context(topic="stakewatch.ownership", partition=3, offset=42, event_id="e-1"):
        log.info("applied")
        logging.getLogger("aiokafka").info("inside")
        bind_record(log, dedup_key="google|scale-ai|meta").info("alert")
    log.info("after")
    applied, inside, alert, after = lines(out)
    for line in (applied, inside, alert):
        assert (line["topic"], line["partition"], line["offset"], line["event_id"]) == (
            "stakewatch.ownership",
            3,
            42,
            "e-1",
        )
    assert alert["dedup_key"] == "google|scale-ai|meta"
    assert "topic" not in after
    assert "dedup_key" not in applied


def test_level_comes_from_the_setting_and_filters_both_loggers() -> None:
    out = configure(env={LEVEL_SETTING: "warning"})
    get_logger("a").info("hidden")
    logging.getLogger("aiokafka").info("hidden too")
    get_logger("a").warning("shown")
    assert [r["event"] for r in lines(out)] == ["shown"]

    out = configure(env={LEVEL_SETTING: "INFO"}, level="DEBUG")  # the argument wins
    get_logger("a").debug("debug shown")
    assert [r["event"] for r in lines(out)] == ["debug shown"]


@pytest.mark.parametrize("where", ["env", "argument"])
def test_a_bad_level_names_the_setting(where: str) -> None:
    kwargs = {"env": {LEVEL_SETTING: "LOUD"}} if where == "env" else {"env": {}, "level": "LOUD"}
    with pytest.raises(ValueError, match=LEVEL_SETTING) as excinfo:
        configure(**kwargs)
    assert "LOUD" in str(excinfo.value)


def test_a_bad_format_names_its_setting() -> None:
    with pytest.raises(ValueError, match="STAKEWATCH_LOG_FORMAT"):
        configure(env={"STAKEWATCH_LOG_FORMAT": "xml"})


def test_a_tty_gets_the_console_renderer_still_redacted() -> None:
    out = configure(stream=TTY())
    get_logger("t").info("hello", key=ROUTING_KEY)
    text = out.getvalue()
    assert "hello" in text
    assert ROUTING_KEY not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_faust_worker_logging_setup_keeps_our_handler() -> None:
    """mode's Worker replaces the root handlers; `worker_options()` makes it keep ours."""
    out = io.StringIO()
    setup = configure_logging(stream=out, environ=ENV)
    options = setup.worker_options()
    assert options["redirect_stdouts"] is False
    mode_setup_logging(
        loglevel=options["loglevel"],
        logging_config=options["logging_config"],
        loghandlers=options["loghandlers"],
    )
    logging.getLogger("faust.transport").warning("routing key %s", ROUTING_KEY)
    get_logger("stakewatch").info("still json")
    records = lines(out)
    assert [r["event"] for r in records] == [f"routing key {MASK}", "still json"]


@settings(deadline=None)  # as every property test here: timing is not the property
@given(
    st.lists(
        st.sampled_from(
            [*"ab :=\"'-_/.", "token", "Authorization", "Bearer ", "hooks.slack.com/x", "pass"]
        ),
        max_size=20,
    ).map("".join)
)
def test_skipping_texts_without_a_trigger_masks_exactly_what_every_pattern_would(text) -> None:
    """The fast path (no ':', '=' or 'hooks.slack': no text pattern can match) is exact."""
    from streams.logging import _TEXT_PATTERNS

    expected = text
    for pattern, replacement in _TEXT_PATTERNS:
        expected = pattern.sub(replacement, expected)
    assert Redactor().redact_text(text) == expected
