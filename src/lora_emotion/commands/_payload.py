"""Payload bytes from the text people paste: hex (KPN, this project) or base64 (TTN, ChirpStack).

The rule, also in ``lora-emotion decode --help``: text that is an even number of hex digits
(after dropping spaces, colons and a ``0x`` prefix) is hex; anything else must be base64, in
the standard (``+/``) or URL-safe (``-_``) alphabet, padded or not. Base64 that happens to be
an even number of hex digits (``ABCD``) is therefore read as hex; if that does not decode, the
error says to pass ``--base64``. Network servers pad their base64, so this happens only for
payloads of 3, 6, 9 ... bytes whose base64 has no letter beyond F.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

from ..errors import DecodeError

Encoding = Literal["auto", "hex", "base64"]

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*\Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}\Z")


def _hex_text(text: str) -> str:
    cleaned = text.strip().replace(" ", "").replace(":", "")
    return cleaned[2:] if cleaned[:2] in ("0x", "0X") else cleaned


def _base64_bytes(text: str) -> bytes | None:
    """The bytes of canonical base64 text (either alphabet, padding optional), else None."""
    cleaned = "".join(text.split())
    if not _BASE64.match(cleaned) or (
        ("-" in cleaned or "_" in cleaned) and ("+" in cleaned or "/" in cleaned)
    ):
        return None
    body = cleaned.rstrip("=")
    if len(body) % 4 == 1 or (body != cleaned and len(cleaned) % 4):
        return None
    standard = body.replace("-", "+").replace("_", "/")
    try:
        data = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    # Stray bits in the last character would let two texts mean the same bytes.
    if base64.b64encode(data).decode("ascii").rstrip("=") != standard:
        return None
    return data


def payload_from_text(text: str, encoding: Encoding = "auto") -> tuple[bytes, bool]:
    """The bytes ``text`` stands for, and whether it was read as hex but is base64 as well.

    Raises:
        DecodeError: the text is not of the given encoding (or, for ``auto``, of either).
    """
    hex_text = _hex_text(text)
    if encoding == "hex" or (encoding == "auto" and _HEX.match(hex_text)):
        if not _HEX.match(hex_text):
            raise DecodeError(f"{text!r} is not hexadecimal", field="PAYLOAD")
        ambiguous = encoding == "auto" and bool(hex_text) and _base64_bytes(text) is not None
        return bytes.fromhex(hex_text), ambiguous
    decoded = _base64_bytes(text)
    if decoded is None:
        expected = "base64" if encoding == "base64" else "hexadecimal or base64"
        raise DecodeError(f"{text!r} is not {expected}", field="PAYLOAD")
    return decoded, False
