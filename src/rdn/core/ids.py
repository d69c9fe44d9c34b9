"""Identifiers: time-ordered UUIDs (version 7, RFC 9562) for rows written in bulk.

A random (version 4) primary key sends each insert to a random leaf of every index that holds it; at a
million rows, bulk imports spend their time paging index leaves in and out. A version-7 UUID starts with the
time in milliseconds, so rows written together sit together at the end of their indexes. The remaining 74
bits are random: identifiers stay unguessable (access never depends on that: every read goes through policy).
"""

from __future__ import annotations

import os
import time
import uuid

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7() -> uuid.UUID:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & _RAND_A) << 64 | 0b10 << 62 | rand & _RAND_B
    return uuid.UUID(int=value)
