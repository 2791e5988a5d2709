"""Label sets as data.

Class order is part of the wire format: a reading says "class 3", and only the label set turns
that into "happy". So a label set is identified on the air (by its id, carried in the FPort)
and its exact contents are pinned by a 16-bit fingerprint that the device reports in its status
message: a decoder whose table disagrees with the device's can detect it instead of silently
mislabelling.

Ids 0-5 are built in and never change meaning; ids 6-23 are for sets declared by the user, in
code (:meth:`LabelRegistry.with_set`) or in a JSON document (:func:`parse_label_sets`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import EncodeError

__all__ = [
    "BUILTIN_SETS",
    "DEFAULT_REGISTRY",
    "FER2013",
    "FERPLUS",
    "MAX_CLASSES",
    "MAX_SET_ID",
    "NO_FACE",
    "PHYSIO3",
    "RAVDESS",
    "TESS",
    "VALENCE3",
    "LabelRegistry",
    "LabelSet",
    "crc16_ccitt",
    "parse_label_sets",
]

#: Sets with more classes would push a single reading past two bytes (101·K + 1 > 65536 at
#: K = 649) long before this; 64 keeps distribution payloads inside 51 bytes.
MAX_CLASSES = 64
#: Set ids share the FPort space with the message type: 24 sets x 8 types = ports 16..207.
MAX_SET_ID = 23
FIRST_USER_SET_ID = 6
#: The name decoders give to a reading without a face (the 2021 demo's class index 7).
NO_FACE = "none"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): small enough to compute on the device."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@dataclass(frozen=True, slots=True)
class LabelSet:
    """An ordered set of class names, identified on the air by ``id``.

    Raises:
        EncodeError: a name that SenML cannot carry, a duplicate, too few or too many classes,
            or an id outside 0..23.
    """

    id: int
    name: str
    labels: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    #: Decoded values interned by payload bytes (a set has at most 101·K + 1 readings), so
    #: decoding a frequent payload costs one lookup. Filled by the codec, bounded by it.
    memo: dict[bytes, object] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, int) or not 0 <= self.id <= MAX_SET_ID:
            raise EncodeError(f"{self.id!r} is not a set id in 0..{MAX_SET_ID}", field="id")
        if not _NAME.match(self.name):
            raise EncodeError(f"{self.name!r} must match [A-Za-z0-9][A-Za-z0-9._-]*", field="name")
        labels = tuple(self.labels)
        object.__setattr__(self, "labels", labels)
        if not 2 <= len(labels) <= MAX_CLASSES:
            raise EncodeError(
                f"{len(labels)} classes; a set needs 2..{MAX_CLASSES}", field="labels"
            )
        for position, label in enumerate(labels):
            if not isinstance(label, str) or not _NAME.match(label):
                raise EncodeError(
                    f"{label!r} must match [A-Za-z0-9][A-Za-z0-9._-]*",
                    field=f"labels[{position}]",
                )
            if label == NO_FACE:
                raise EncodeError(
                    f"{NO_FACE!r} is reserved for 'no face' and cannot be a class",
                    field=f"labels[{position}]",
                )
        index = {label: position for position, label in enumerate(labels)}
        if len(index) != len(labels):
            raise EncodeError("duplicate class name", field="labels")
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "memo", {})

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def index(self, label: str) -> int:
        """Position of ``label``.

        Raises:
            EncodeError: the label is not in this set.
        """
        try:
            return self._index[label]
        except (KeyError, TypeError):
            raise EncodeError(
                f"{label!r} is not in label set {self.name!r} ({', '.join(self.labels)})",
                field="label",
            ) from None

    @property
    def fingerprint(self) -> int:
        """CRC-16/CCITT-FALSE over the class names joined by newlines, in order."""
        return crc16_ccitt("\n".join(self.labels).encode("ascii"))


FER2013 = LabelSet(
    0, "fer2013", ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
)
FERPLUS = LabelSet(
    1,
    "ferplus",
    ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"),
)
PHYSIO3 = LabelSet(2, "physio3", ("angry", "happy", "sad"))
VALENCE3 = LabelSet(3, "valence3", ("pleasant", "unpleasant", "neutral"))
RAVDESS = LabelSet(
    4,
    "ravdess",
    ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
)
TESS = LabelSet(
    5,
    "tess",
    ("anger", "disgust", "fear", "happiness", "pleasant_surprise", "sadness", "neutral"),
)
BUILTIN_SETS: tuple[LabelSet, ...] = (FER2013, FERPLUS, PHYSIO3, VALENCE3, RAVDESS, TESS)


@dataclass(frozen=True, slots=True)
class LabelRegistry:
    """Which label set each set id means; immutable, extend with :meth:`with_set`."""

    sets: Mapping[int, LabelSet]

    def get(self, set_id: int) -> LabelSet | None:
        return self.sets.get(set_id)

    def by_name(self, name: str) -> LabelSet:
        """Look a set up by its name.

        Raises:
            EncodeError: no set of that name.
        """
        for label_set in self.sets.values():
            if label_set.name == name:
                return label_set
        known = ", ".join(s.name for s in self.sets.values())
        raise EncodeError(f"unknown label set {name!r} (known: {known})", field="label_set")

    def with_set(self, label_set: LabelSet) -> LabelRegistry:
        """A registry that also knows ``label_set``.

        Raises:
            EncodeError: the id is a built-in one, or taken by a different set, or the name
                is already used by another id.
        """
        if label_set.id < FIRST_USER_SET_ID and BUILTIN_SETS[label_set.id] != label_set:
            raise EncodeError(
                f"id {label_set.id} is the built-in set {BUILTIN_SETS[label_set.id].name!r}; "
                f"user sets take ids {FIRST_USER_SET_ID}..{MAX_SET_ID}",
                field="id",
            )
        existing = self.sets.get(label_set.id)
        if existing is not None and existing != label_set:
            raise EncodeError(f"id {label_set.id} is already {existing.name!r}", field="id")
        for other in self.sets.values():
            if other.name == label_set.name and other.id != label_set.id:
                raise EncodeError(f"name {other.name!r} is already id {other.id}", field="name")
        return LabelRegistry({**self.sets, label_set.id: label_set})


DEFAULT_REGISTRY = LabelRegistry({s.id: s for s in BUILTIN_SETS})


def parse_label_sets(document: Any, *, registry: LabelRegistry = DEFAULT_REGISTRY) -> LabelRegistry:
    """Add the sets declared in a parsed JSON document to ``registry``.

    The document looks like ``{"label_sets": [{"id": 6, "name": "speech4",
    "labels": ["neutral", "happy", "sad", "angry"]}]}``.

    Returns:
        A new registry holding the built-in sets and the declared ones.

    Raises:
        EncodeError: the document is not of that shape, or a set is invalid; the field names
            the position (``label_sets[2].labels[0]``).
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("label_sets"), list):
        raise EncodeError("expected an object with a 'label_sets' list", field="label_sets")
    for position, entry in enumerate(document["label_sets"]):
        where = f"label_sets[{position}]"
        if not isinstance(entry, Mapping):
            raise EncodeError("expected an object", field=where)
        set_id, name, labels = entry.get("id"), entry.get("name"), entry.get("labels")
        if not isinstance(set_id, int) or isinstance(set_id, bool):
            raise EncodeError("'id' must be an integer", field=f"{where}.id")
        if not isinstance(name, str):
            raise EncodeError("'name' must be a string", field=f"{where}.name")
        if not isinstance(labels, list):
            raise EncodeError("'labels' must be a list of strings", field=f"{where}.labels")
        try:
            registry = registry.with_set(LabelSet(set_id, name, tuple(labels)))
        except EncodeError as exc:
            raise EncodeError(exc.reason, field=f"{where}.{exc.field or ''}".rstrip(".")) from exc
    return registry
