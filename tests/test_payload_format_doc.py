"""docs/payload-format.md must describe the layouts the code implements."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lora_emotion.labels import BUILTIN_SETS
from lora_emotion.messages import LAYOUTS, MESSAGE_TYPES, SET_BLOCK_BASE, SET_BLOCK_SIZE

DOC = Path(__file__).parent.parent / "docs" / "payload-format.md"


def doc_sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for match in re.finditer(r"^### 3\.\d+ (\w+)[^\n]*\n(.*?)(?=^### |^## )", text, re.M | re.S):
        sections[match.group(1)] = match.group(2)
    return sections


def table_rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # drop the header row


@pytest.mark.parametrize("message_type", sorted(LAYOUTS))
def test_layout_table_matches_code(message_type: str) -> None:
    sections = doc_sections()
    key = "batches" if message_type == "batch" else message_type
    assert key in sections, f"no section 3.x {key} in {DOC.name}"
    rows = table_rows(sections[key])
    documented = [(name, radix, meaning) for _, name, radix, meaning in rows]
    expected = [(f.name, f.radix, f.meaning) for f in LAYOUTS[message_type]]
    assert documented == expected


def test_type_table_matches_dispatch() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("| type | message | length |")[1].split("\n\n")[0]
    codes = [int(row[0]) for row in table_rows("| h |\n" + block)]
    assert codes == sorted(MESSAGE_TYPES)


def test_label_set_table_matches_builtins() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("| id | name | K |")[1].split("\n\n")[0]
    rows = table_rows("| h |\n" + block)
    for label_set, row in zip(BUILTIN_SETS, rows, strict=False):
        assert int(row[0]) == label_set.id
        assert row[1] == label_set.name
        assert int(row[2]) == len(label_set)
        assert [c.strip() for c in row[3].split(",")] == list(label_set.labels)
        assert int(row[4], 16) == label_set.fingerprint
    assert "16 + 8·set_id + type" in text
    assert (SET_BLOCK_BASE, SET_BLOCK_SIZE) == (16, 8)
