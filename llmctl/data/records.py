"""Reading data files (JSONL, JSON, CSV) into records that remember their file and line for error messages."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv")


@dataclass(frozen=True)
class Record:
    """One record of a data file: its values and ``where`` it came from (``file:line``)."""

    values: dict[str, Any]
    where: str


def read_records(path: str | Path) -> list[Record]:
    """Every record of a ``.jsonl``, ``.json`` (list of objects) or ``.csv`` file; a malformed one raises DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported data file type {suffix or '(none)'!r} (use .jsonl, .json or .csv)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    readers = {".jsonl": _jsonl, ".json": _json, ".csv": _csv}
    records = readers[suffix](path, text)
    if not records:
        raise DataError(f"{path}: no records found")
    return records


def _object(path: Path, line: int, value: Any) -> Record:
    if not isinstance(value, dict):
        raise DataError(f"{path}:{line}: expected a JSON object, got {type(value).__name__}")
    return Record(value, f"{path}:{line}")


def _jsonl(path: Path, text: str) -> list[Record]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno})") from None
        records.append(_object(path, number, value))
    return records


def _json(path: Path, text: str) -> list[Record]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: invalid JSON ({error.msg} at column {error.colno})") from None
    if isinstance(values, dict) and isinstance(values.get("data"), list):
        values = values["data"]
    if not isinstance(values, list):
        raise DataError(f"{path}:1: expected a JSON list of objects")
    lines = _object_lines(text, len(values))
    return [_object(path, line, value) for line, value in zip(lines, values, strict=True)]


def _object_lines(text: str, count: int) -> list[int]:
    """Best-effort line numbers of the top-level objects of a JSON list."""
    lines, depth, line, in_string, escaped = [], 0, 1, False, False
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            escaped = char == "\\" and not escaped
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            if depth == 1:
                lines.append(line)
            depth += 1
        elif char in "}]":
            depth -= 1
    return (lines + [line] * count)[:count]


def _csv(path: Path, text: str) -> list[Record]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    if not reader.fieldnames:
        raise DataError(f"{path}:1: the CSV file has no header row")
    records = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise DataError(f"{path}:{line}: more values than the {len(reader.fieldnames)} header columns")
        if any(value is None for value in row.values()):
            missing = [key for key, value in row.items() if value is None]
            raise DataError(f"{path}:{line}: missing field {missing[0]!r} (fewer values than header columns)")
        if any(value.strip() for value in row.values()):
            records.append(Record(dict(row), f"{path}:{line}"))
    return records
