"""Reading data files (JSONL, JSON, CSV) into records that remember their file and line for error messages."""

from __future__ import annotations

import csv
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv")
CSV_FIELD_LIMIT = 1 << 30  # csv's default (128 KiB) refuses a long document in a text column


@dataclass(frozen=True)
class Record:
    """One record of a data file: its values and ``where`` it came from (``file:line``)."""

    values: dict[str, Any]
    where: str


def read_records(path: str | Path) -> list[Record]:
    """Every record of a ``.jsonl``, ``.json`` (list of objects) or ``.csv`` file; a malformed one raises DataError.

    Text is UTF-8, with or without a byte-order mark (as Windows editors save it).
    """
    path = Path(path)
    _check_path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported data file type {suffix or '(none)'!r} (use .jsonl, .json or .csv)")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if not raw.strip():
        raise DataError(f"{path}: the file is empty (0 records)" if not raw else f"{path}: the file holds only "
                        "blank lines (0 records)")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: UTF-16 text; save the file as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    readers = {".jsonl": _jsonl, ".json": _json, ".csv": _csv}
    records = readers[suffix](path, text)
    if not records:
        raise DataError(f"{path}: no records found")
    return records


def _check_path(path: Path) -> None:
    """Refuse, saying what is wrong, a path that is not a regular file (before reading: a pipe could block)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        broken = " (a symbolic link to a missing file)" if path.is_symlink() else ""
        raise DataError(f"{path}: no such file{broken}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a folder, not a data file (give a .jsonl, .json or .csv file)")
    if not stat.S_ISREG(mode):
        kind = ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else
                "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")
        raise DataError(f"{path}: not a regular file but {kind}; give a .jsonl, .json or .csv file")


def _parse_json(path: Path, line: int, text: str) -> Any:
    """``json.loads`` with every failure as a one-line DataError at ``path:line``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        line = line + error.lineno - 1
        raise DataError(f"{path}:{line}: invalid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise DataError(f"{path}:{line}: JSON nested too deeply (arrays or objects inside each other thousands "
                        "of levels down)") from None
    except ValueError as error:  # an integer of more than 4300 digits
        raise DataError(f"{path}:{line}: invalid JSON value ({str(error).split(';')[0]})") from None
    if "\\ud" in text.lower() and _has_lone_surrogate(value):
        raise DataError(f"{path}:{line}: a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), "
                        "which is not text")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """True when a string anywhere in ``value`` cannot be encoded as UTF-8 (a lone surrogate from a JSON escape)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _object(path: Path, line: int, value: Any) -> Record:
    if not isinstance(value, dict):
        raise DataError(f"{path}:{line}: expected a JSON object, got {type(value).__name__}")
    return Record(value, f"{path}:{line}")


def _jsonl(path: Path, text: str) -> list[Record]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        records.append(_object(path, number, _parse_json(path, number, line)))
    return records


def _json(path: Path, text: str) -> list[Record]:
    values = _parse_json(path, 1, text)
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
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # a long text field is data, not an error
    reader = csv.DictReader(text.splitlines(keepends=True))
    try:
        return _csv_rows(path, reader)
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None


def _csv_rows(path: Path, reader: csv.DictReader) -> list[Record]:
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
