"""The key that signs engine snapshots: nothing read from the snapshots topic is unpickled
unless this deployment's key signed it.

A snapshot is a pickle, and unpickling runs code: anyone who can produce to
``<p>.snapshots`` could otherwise run code in every worker at its next restore. So the
writer MACs the pickled bytes (HMAC-SHA256, in the forked child that made them) and each
marker (which carries the bytes' MAC); a reader checks a marker's MAC before parsing it and
the bytes' MAC before anything is unpickled, both with ``hmac.compare_digest``. Distinct
prefixes keep a marker's MAC from ever passing for a blob's.

Where the key comes from (``snapshot_key``): ``STAKEWATCH_SNAPSHOT_KEY``; else, in embedded
mode, ``<data_dir>/snapshot.key`` (made on first use, mode 0600, refused if others can read
it); else — an external broker and no key — none: the worker writes and reads no snapshots
and replays the event topics instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from pathlib import Path

from streams.settings import Settings, SettingsError

__all__ = ["KEY_FILE", "MAC_BYTES", "SnapshotKey", "snapshot_key"]

KEY_FILE = "snapshot.key"
MAC_BYTES = 64  # hex digits of an HMAC-SHA256
_MARKER = b"stakewatch snapshot marker v1\0"
_BLOB = b"stakewatch snapshot blob v1\0"


class SnapshotKey:
    """Signs and verifies snapshot markers and blobs; its ``repr`` never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a snapshot key needs at least 16 bytes")
        self._key = key

    def _mac(self, prefix: bytes, data: bytes | memoryview) -> bytes:
        mac = hmac.new(self._key, prefix, hashlib.sha256)
        mac.update(data)
        return mac.hexdigest().encode()

    def sign_marker(self, value: bytes) -> bytes:
        return self._mac(_MARKER, value)

    def marker_ok(self, value: bytes, mac: bytes | None) -> bool:
        return mac is not None and hmac.compare_digest(self.sign_marker(value), mac)

    def sign_blob(self, blob: bytes | memoryview) -> bytes:
        """``MAC_BYTES`` ASCII hex digits."""
        return self._mac(_BLOB, blob)

    def blob_ok(self, blob: bytes | memoryview, mac: str) -> bool:
        return bool(mac) and hmac.compare_digest(self.sign_blob(blob), mac.encode())

    def __repr__(self) -> str:
        return "SnapshotKey(***)"


def snapshot_key(settings: Settings) -> SnapshotKey | None:
    """The deployment's key (see the module docstring); None: no snapshots."""
    if settings.snapshot_key is not None:
        secret = settings.snapshot_key.get_secret_value()
    elif settings.bootstrap is None:
        secret = _data_dir_key(settings.data_dir)
    else:
        return None
    _mask_in_logs(secret)
    return SnapshotKey(secret.encode())


def _data_dir_key(data_dir: Path) -> str:
    """The embedded mode's key: read, or made once (linked into place whole, so two
    starters racing agree on one key and nobody reads half a file)."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{KEY_FILE}.", dir=data_dir)  # mode 0600
        tmp = Path(name)
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another starter won: use its key
        finally:
            tmp.unlink()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SettingsError(
            f"STAKEWATCH_DATA_DIR: {str(path)!r} can be read by other users (mode {mode:04o}); "
            "chmod 600 it, or delete it to have a new one made"
        )
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise SettingsError(f"STAKEWATCH_DATA_DIR: {str(path)!r} holds no usable key; delete it")
    return secret


def _mask_in_logs(secret: str) -> None:
    from streams.logging import add_secrets

    with contextlib.suppress(RuntimeError):
        add_secrets(secret)
