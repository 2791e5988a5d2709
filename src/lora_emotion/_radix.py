"""Integer coding primitives behind every compact payload.

Why this shape: a payload is one unsigned integer, big-endian, built as a mixed-radix number
whose digits are the message's fields, each with exactly as many values as the field can take.
The byte count is then the information floor of the field domains rounded up to whole bytes,
with no per-field padding. Probability vectors and count vectors are not independent digits
(they sum to a fixed or bounded total), so they are first turned into a single digit by
ranking them among all vectors of that sum (enumerative coding of compositions).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

from .errors import DecodeError


def byte_length(states: int) -> int:
    """Bytes needed to hold any of ``states`` values (at least one byte)."""
    return max(1, ((states - 1).bit_length() + 7) // 8)


def compositions(total: int, parts: int) -> int:
    """How many vectors of ``parts`` non-negative integers sum to ``total``."""
    return comb(total + parts - 1, parts - 1)


def rank_composition(vector: Sequence[int], total: int) -> int:
    """Lexicographic rank of ``vector`` among all vectors of its length summing to ``total``.

    rank = sum over i < parts-1 of [C(R_i + m_i, m_i) - C(R_i - c_i + m_i, m_i)], where
    R_i is what is left of the total before part i and m_i = parts - 1 - i.
    """
    rank = 0
    remaining = total
    parts = len(vector)
    for i in range(parts - 1):
        c = vector[i]
        m = parts - 1 - i
        if c:
            rank += comb(remaining + m, m) - comb(remaining - c + m, m)
            remaining -= c
    return rank


def unrank_composition(rank: int, total: int, parts: int) -> list[int]:
    """Inverse of :func:`rank_composition`; ``rank`` must be below ``compositions``."""
    vector = []
    remaining = total
    for i in range(parts - 1):
        m = parts - 1 - i
        top = comb(remaining + m, m)
        # Largest c with top - C(remaining - c + m, m) <= rank; the left side grows with c.
        low, high = 0, remaining
        while low < high:
            mid = (low + high + 1) // 2
            if top - comb(remaining - mid + m, m) <= rank:
                low = mid
            else:
                high = mid - 1
        rank -= top - comb(remaining - low + m, m)
        vector.append(low)
        remaining -= low
    vector.append(remaining)
    return vector


def rank_bounded(vector: Sequence[int]) -> int:
    """Rank of a count vector among all vectors of its length, ordered by sum then lexically.

    Vectors summing to less than n come first; there are C(n - 1 + parts, parts) of them.
    """
    total = sum(vector)
    parts = len(vector)
    return comb(total - 1 + parts, parts) + rank_composition(vector, total) if total else 0


def bounded_count(max_total: int, parts: int) -> int:
    """How many vectors of ``parts`` non-negative integers sum to at most ``max_total``."""
    return comb(max_total + parts, parts)


def unrank_bounded(rank: int, parts: int, max_total: int) -> list[int] | None:
    """Inverse of :func:`rank_bounded`, or None when the rank needs a sum above ``max_total``."""
    if rank >= bounded_count(max_total, parts):
        return None
    low, high = 0, max_total
    # Largest total n with C(n - 1 + parts, parts) <= rank.
    while low < high:
        mid = (low + high + 1) // 2
        if comb(mid - 1 + parts, parts) <= rank:
            low = mid
        else:
            high = mid - 1
    return unrank_composition(rank - comb(low - 1 + parts, parts), low, parts)


def pack_digits(digits: Sequence[tuple[int, int]]) -> int:
    """Fold ``(digit, radix)`` pairs, most significant first, into one integer."""
    value = 0
    for digit, radix in digits:
        value = value * radix + digit
    return value


def unpack_digits(value: int, radices: Sequence[int]) -> list[int]:
    """Split ``value`` into digits of the given radices, most significant first."""
    digits = [0] * len(radices)
    for position in range(len(radices) - 1, -1, -1):
        value, digits[position] = divmod(value, radices[position])
    return digits


def sequence_lengths(element_states: int, head_states: int, limit: int) -> list[int]:
    """Byte length of a payload of n elements, for n = 0, 1, ... while it fits ``limit``.

    The payload holds ``head_states * element_states**n`` values. Lengths are forced to grow
    strictly with n, so the receiver learns n from the payload length alone.
    """
    lengths: list[int] = []
    states = head_states
    while True:
        length = byte_length(states)
        if lengths and length <= lengths[-1]:
            length = lengths[-1] + 1
        if length > limit:
            return lengths
        lengths.append(length)
        states *= element_states


def to_bytes(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def require_below(value: int, states: int, *, field: str) -> None:
    """Reject payload integers outside the field's domain (non-canonical bytes)."""
    if value >= states:
        raise DecodeError(
            f"value {value} is out of range (the field has {states} values)", field=field, offset=0
        )
