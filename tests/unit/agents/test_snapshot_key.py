"""The snapshot sign/verify layer: MACs that only the key makes, a key that never shows, and
where the key comes from (the setting, the embedded data dir's file, or none)."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from streams.agents.snapshot_key import KEY_FILE, MAC_BYTES, SnapshotKey, snapshot_key
from streams.agents.snapshots import Marker, made_in_child
from streams.settings import Settings, SettingsError, load_settings

KEY = SnapshotKey(b"k" * 32)
OTHER = SnapshotKey(b"o" * 32)
VALUE = Marker(0, "w:1:1", "w", (3, 4), {("t", 0): 5}, frozenset({0, 1}), 1.0).to_json()


def test_a_marker_verifies_only_with_its_mac_under_the_same_key() -> None:
    mac = KEY.sign_marker(VALUE)
    assert len(mac) == MAC_BYTES and mac.isascii()
    assert KEY.marker_ok(VALUE, mac)
    assert not KEY.marker_ok(VALUE, None)  # unsigned
    assert not KEY.marker_ok(VALUE, b"0" * MAC_BYTES)  # made up
    assert not KEY.marker_ok(VALUE.replace(b'"w"', b'"x"'), mac)  # tampered
    assert not OTHER.marker_ok(VALUE, mac)  # another deployment's key
    assert not KEY.marker_ok(VALUE, mac[:-1])


def test_a_blob_verifies_with_its_mac_as_bytes_or_a_view_and_never_with_a_markers() -> None:
    blob = os.urandom(3 * 1024 * 1024)
    mac = KEY.sign_blob(blob)
    assert KEY.sign_blob(memoryview(blob)) == mac
    assert KEY.blob_ok(blob, mac.decode())
    assert KEY.blob_ok(memoryview(blob), mac.decode())
    assert not KEY.blob_ok(blob[:-1], mac.decode())
    assert not KEY.blob_ok(blob, "")  # a marker without a MAC for its bytes
    assert not OTHER.blob_ok(blob, mac.decode())
    assert not KEY.blob_ok(VALUE, KEY.sign_marker(VALUE).decode())  # domains kept apart


def test_the_key_never_shows() -> None:
    assert "k" * 16 not in repr(KEY) and repr(KEY) == "SnapshotKey(***)"
    with pytest.raises(ValueError, match="16 bytes"):
        SnapshotKey(b"short")


async def test_the_forked_child_can_return_the_mac_and_the_bytes_without_joining_them() -> None:
    state = os.urandom(100_000)
    made = await made_in_child(lambda: (KEY.sign_blob(state), state))
    assert made[:MAC_BYTES] == KEY.sign_blob(state)
    assert KEY.blob_ok(memoryview(made)[MAC_BYTES:], made[:MAC_BYTES].decode())


def test_the_setting_is_the_key(tmp_path) -> None:
    secret = "s" * 40
    key = snapshot_key(Settings(snapshot_key=secret, broker="kafka://k.test:9092"))
    assert key is not None and key.marker_ok(VALUE, SnapshotKey(secret.encode()).sign_marker(VALUE))
    assert not (tmp_path / KEY_FILE).exists()


def test_an_external_broker_without_a_key_means_no_snapshots(tmp_path) -> None:
    assert snapshot_key(Settings(broker="kafka://k.test:9092", data_dir=tmp_path)) is None
    assert not (tmp_path / KEY_FILE).exists()


def test_embedded_mode_makes_a_private_key_file_once(tmp_path) -> None:
    data_dir = tmp_path / "data"
    first = snapshot_key(Settings(data_dir=data_dir))
    path = data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = snapshot_key(Settings(data_dir=data_dir))
    assert first is not None and second is not None
    assert second.marker_ok(VALUE, first.sign_marker(VALUE))  # the same key next start
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]  # no temporary file left


async def test_racing_starters_agree_on_one_key(tmp_path) -> None:
    keys = await asyncio.gather(
        *(asyncio.to_thread(snapshot_key, Settings(data_dir=tmp_path)) for _ in range(8))
    )
    mac = keys[0].sign_marker(VALUE)  # type: ignore[union-attr]
    assert all(k is not None and k.marker_ok(VALUE, mac) for k in keys)


def test_a_key_file_others_can_read_is_refused_naming_it(tmp_path) -> None:
    snapshot_key(Settings(data_dir=tmp_path))
    (tmp_path / KEY_FILE).chmod(0o644)
    with pytest.raises(SettingsError, match=f"{KEY_FILE}' can be read by other users"):
        snapshot_key(Settings(data_dir=tmp_path))


def test_a_short_key_setting_fails_naming_it_without_echoing_it(monkeypatch) -> None:
    monkeypatch.setenv("STAKEWATCH_SNAPSHOT_KEY", "tooShortKey")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("STAKEWATCH_SNAPSHOT_KEY: must be at least 32")
    assert "tooShortKey" not in str(caught.value)
    monkeypatch.setenv("STAKEWATCH_SNAPSHOT_KEY", "")
    assert load_settings().snapshot_key is None  # empty means unset
