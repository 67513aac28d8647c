"""Deterministic randomness: every value derives from (seed, stream, index), never from order.

A note's content depends only on the run seed and the note's index, so any worker can make any
note, and the output is byte-identical however the work is split. Python's ``random.Random``
(seeded with an int) and Faker (``seed_instance``) are both stable for a given installation.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from faker import Faker


def derive_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed from the run seed and any labels (stream name, index, ...)."""
    key = "|".join([str(int(seed)), *(str(p) for p in parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def rng_for(seed: int, *parts: object) -> random.Random:
    return random.Random(derive_seed(seed, *parts))


def seed_tag(seed: int) -> str:
    """Four hex characters naming the run seed inside ids (ids stay unique across seeds)."""
    return f"{derive_seed(seed, 'tag') & 0xFFFF:04x}"


@lru_cache(maxsize=1)
def _faker() -> Faker:
    # use_weighting=False: uniform picks from Faker's en_US vocabularies, ~50x faster than the
    # frequency-weighted default and a wider spread of rare names (good for a de-id benchmark).
    return Faker("en_US", use_weighting=False)


def faker_for(seed: int, *parts: object) -> Faker:
    """The process's Faker instance, re-seeded for (seed, parts). Use it before the next call."""
    fake = _faker()
    fake.seed_instance(derive_seed(seed, "faker", *parts))
    return fake
