"""The one clock: every "now" in RDN comes from here so tests can freeze and advance time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_frozen: datetime | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    frozen = _frozen
    return frozen if frozen is not None else datetime.now(UTC)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Freeze the clock at ``at`` for the duration of the block (tests)."""
    global _frozen
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    with _lock:
        previous, _frozen = _frozen, at
    try:
        yield
    finally:
        with _lock:
            _frozen = previous


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward (tests)."""
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("advance() needs a frozen clock")
        _frozen = _frozen + delta
        return _frozen
