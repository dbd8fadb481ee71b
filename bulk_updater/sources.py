"""Readers that turn input into numbered rows: CSV and JSON-lines files, standard input, iterables.

Every record read becomes exactly one `(row, LeadUpdate | Invalid)` pair: a record that cannot be
sent becomes `Invalid` with a message naming the column and the problem, and reading goes on. Only
problems with the file as a whole (unreadable, not text, no id column, unknown column) raise
`InputError`, and they do so when the source is opened, before any request is sent.
"""

from __future__ import annotations

import asyncio
import csv
import difflib
import hashlib
import json
import os
import stat
import sys
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Final, Literal

from pydantic import ValidationError

from .errors import ConfigError, InputError
from .models import TEXT_FIELDS, LeadUpdate

Format = Literal["csv", "jsonl"]
CUSTOM_PREFIX: Final = "customFields."
_KNOWN: Final = ("id", "_id", *TEXT_FIELDS, "tags", "customFields", "email")
_SNIFF_BYTES: Final = 8192
#: Cells may be long (notes, JSON); a runaway unterminated quote still ends as one invalid row.
csv.field_size_limit(1 << 20)


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that cannot be sent; `id` and `email` are what the record held, for the report."""

    id: str
    message: str
    email: str | None = None


Item = LeadUpdate | Invalid
RowItem = tuple[int, Item]


def suggest(name: str, known: Iterable[str] = _KNOWN) -> str:
    """' (did you mean `jobTitle`?)' for a near miss, else ''."""
    known = list(known)
    by_lower = {k.lower(): k for k in known}
    if name.lower().startswith(CUSTOM_PREFIX.lower()) and not name.startswith(CUSTOM_PREFIX):
        return f" (did you mean `{CUSTOM_PREFIX}{name[len(CUSTOM_PREFIX) :]}`?)"
    match = by_lower.get(name.lower()) or next(
        iter(difflib.get_close_matches(name, known, n=1, cutoff=0.6)), None
    )
    return f" (did you mean `{match}`?)" if match else ""


def _problem(exc: ValidationError) -> str:
    """One line naming the column and the problem, from pydantic's error list."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in error["loc"])
        msg = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"column {loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _label(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def parse_mapping(record: Mapping[str, Any]) -> Item:
    """Validate one JSON-lines / library record (keys as in the CSV header, JSON types)."""
    raw_id = record.get("id", record.get("_id", ""))
    rid = _label(raw_id) if raw_id is not None else ""
    if "email" in record:
        return Invalid(rid, "column email: email cannot be changed; remove it from the row")
    if "id" in record and "_id" in record:
        return Invalid(rid, "both `id` and `_id` are set; keep one")
    data: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in record.items():
        if not isinstance(key, str):
            return Invalid(rid, f"column {key!r}: a column name must be a string")
        if value is None:
            continue
        if key.startswith(CUSTOM_PREFIX) and len(key) > len(CUSTOM_PREFIX):
            custom[key[len(CUSTOM_PREFIX) :]] = value
        elif key in _KNOWN:
            data["id" if key == "_id" else key] = value
        else:
            return Invalid(rid, f"unknown column `{key}`{suggest(key)}")
    if custom:
        base = data.get("customFields", {})
        if not isinstance(base, dict):
            return Invalid(rid, "column customFields: must be a JSON object")
        data["customFields"] = {**base, **custom}
    return _validate(data, rid, None)


def _validate(data: dict[str, Any], rid: str, email: str | None) -> Item:
    try:
        return LeadUpdate.model_validate(data)
    except ValidationError as exc:
        return Invalid(rid, _problem(exc), email)


def _parse_tags(cell: str) -> list[str] | str:
    """The tag list of a cell, or a problem message."""
    if cell.lstrip().startswith("["):
        try:
            tags = json.loads(cell)
        except json.JSONDecodeError as exc:
            return f"column tags: not a valid JSON array ({exc.msg})"
        except RecursionError:
            return "column tags: the JSON array is nested too deeply"
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return "column tags: the JSON array must hold only strings"
        return tags
    tags = [t.strip() for t in cell.split(";") if t.strip()]
    return tags if tags else f"column tags: no tag in {cell!r}"


def _parse_custom_json(cell: str) -> dict[str, Any] | str:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        return f"column customFields: not a valid JSON object ({exc.msg})"
    except RecursionError:
        return "column customFields: the JSON is nested too deeply"
    if not isinstance(value, dict):
        return 'column customFields: must be a JSON object like {"industry": "SaaS"}'
    return value


class _CsvColumns:
    """The header of a CSV file, checked once, and the conversion of its records."""

    def __init__(self, header: list[str], name: str) -> None:
        self.names = [h.strip() for h in header]
        seen: set[str] = set()
        for column in self.names:
            if not column:
                raise InputError(f"{name}: the header has an empty column name; name or remove it")
            if column in seen:
                raise InputError(f"{name}: column `{column}` appears twice in the header")
            seen.add(column)
            is_custom = column.startswith(CUSTOM_PREFIX) and len(column) > len(CUSTOM_PREFIX)
            if column not in _KNOWN and not is_custom:
                raise InputError(f"{name}: unknown column `{column}`{suggest(column)}")
        if "id" in seen and "_id" in seen:
            raise InputError(f"{name}: has both `id` and `_id` columns; keep one")
        if "id" not in seen and "_id" not in seen:
            raise InputError(f"{name}: no `id` column; the first line must name the columns")
        self.id_index = self.names.index("id" if "id" in seen else "_id")
        self.email_index = self.names.index("email") if "email" in seen else None

    def convert(self, cells: list[str]) -> Item:
        names = self.names
        rid = cells[self.id_index] if self.id_index < len(cells) else ""
        email = None
        if self.email_index is not None and self.email_index < len(cells):
            email = cells[self.email_index] or None
        if len(cells) != len(names):
            return Invalid(
                rid, f"the row has {len(cells)} cells but the header {len(names)}", email
            )
        data: dict[str, Any] = {"id": rid, "email": email}
        custom: dict[str, Any] = {}
        for column, cell in zip(names, cells, strict=True):
            if not cell or column in ("id", "_id", "email"):
                continue
            if max(cell) >= "\udc80" and any("\udc80" <= c <= "\udcff" for c in cell):
                return Invalid(rid, f"column {column}: not valid UTF-8 text", email)
            if column == "tags":
                tags = _parse_tags(cell)
                if isinstance(tags, str):
                    return Invalid(rid, tags, email)
                data["tags"] = tags
            elif column == "customFields":
                obj = _parse_custom_json(cell)
                if isinstance(obj, str):
                    return Invalid(rid, obj, email)
                custom = {**obj, **custom}
            elif column.startswith(CUSTOM_PREFIX):
                custom[column[len(CUSTOM_PREFIX) :]] = cell
            else:
                data[column] = cell
        if custom:
            data["customFields"] = custom
        return _validate(data, rid, email)


def _decoded_lines(raw: IO[bytes]) -> Iterator[str]:
    """Lines of a byte stream as text; bad UTF-8 survives as surrogates, so one row is blamed."""
    first = True
    for line in raw:
        text = line.decode("utf-8", "surrogateescape")
        if first:
            text = text.removeprefix("\ufeff")
            first = False
        yield text


class Source:
    """A CSV or JSON-lines file, or standard input (`-`), opened and checked as a whole."""

    def __init__(self, path: str | os.PathLike[str], *, format: Format | None = None) -> None:
        path = os.fspath(path)
        self.path = path
        self.name = "standard input" if path == "-" else path
        self.format: Format = format or _format_of(path)
        self.is_stdin = path == "-"
        self._raw = self._open()
        # A pipe, FIFO or terminal can be read once, and a read may block: such input is read in
        # a thread, and cannot be counted in advance or fingerprinted for --resume.
        self.rereadable = not self.is_stdin and stat.S_ISREG(os.fstat(self._raw.fileno()).st_mode)
        self._sniff()
        self._lines = _decoded_lines(self._raw)
        self._columns: _CsvColumns | None = None
        if self.format == "csv":
            self._columns = self._read_header()

    def _open(self) -> IO[bytes]:
        if self.is_stdin:
            return sys.stdin.buffer
        try:
            if os.path.isdir(self.path):
                raise InputError(f"{self.path}: is a folder; give the path of a CSV or JSONL file")
            return open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file; check the path") from None
        except PermissionError:
            raise InputError(f"{self.path}: permission denied; make the file readable") from None
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be read ({exc.strerror})") from None

    def _sniff(self) -> None:
        peek = getattr(self._raw, "peek", None)
        head: bytes = peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if peek else b""
        if b"\x00" in head:
            self.close()
            raise InputError(
                f"{self.name}: is not a text file (binary data found); "
                f"export it as UTF-8 {self.format.upper()}"
            )

    def _read_header(self) -> _CsvColumns:
        self._reader = csv.reader(self._lines, strict=True)
        try:
            header = next(self._reader, None)
        except csv.Error as exc:
            self.close()
            raise InputError(
                f"{self.name}: the header line cannot be read as CSV ({exc})"
            ) from None
        if not header:
            self.close()
            raise InputError(f"{self.name}: is empty; the first line must name the columns")
        if any("\udc80" <= c <= "\udcff" for cell in header for c in cell):
            self.close()
            raise InputError(f"{self.name}: is not UTF-8 text; save it as UTF-8 CSV")
        try:
            return _CsvColumns(header, self.name)
        except InputError:
            self.close()
            raise

    def __iter__(self) -> Iterator[RowItem]:
        try:
            yield from self._csv_rows() if self._columns else self._jsonl_rows()
        finally:
            self.close()

    def _csv_rows(self) -> Iterator[RowItem]:
        assert self._columns is not None
        convert = self._columns.convert
        row = 0
        while True:
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                yield row, Invalid("", f"the row cannot be read as CSV ({exc}); check its quotes")
                continue
            if not cells or (cells == [""] and len(self._columns.names) > 1):
                continue  # a blank line is not a record
            row += 1
            yield row, convert(cells)

    def _jsonl_rows(self) -> Iterator[RowItem]:
        row = 0
        for line in self._lines:
            if not line.strip():
                continue
            row += 1
            yield row, _parse_json_line(line)

    def close(self) -> None:
        if not self.is_stdin:
            self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fingerprint(self) -> str | None:
        """sha256 of the file's bytes, to tell on `--resume` whether the input changed; None
        for input that can be read only once (standard input, a pipe)."""
        if not self.rereadable:
            return None
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def count(self) -> int | None:
        """How many records the file holds (one extra pass), or None for input read only once."""
        if not self.rereadable:
            return None
        with open(self.path, "rb") as fh:
            lines = _decoded_lines(fh)
            if self.format == "jsonl":
                return sum(1 for line in lines if line.strip())
            reader = csv.reader(lines, strict=True)
            width = len(self._columns.names) if self._columns else 1
            try:
                next(reader, None)
                return sum(1 for cells in reader if cells and (cells != [""] or width == 1))
            except csv.Error:
                return None


def _parse_json_line(line: str) -> Item:
    if any("\udc80" <= c <= "\udcff" for c in line):
        return Invalid("", "the line is not valid UTF-8 text")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Invalid("", f"the line is not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return Invalid("", "the line's JSON is nested too deeply")
    if not isinstance(record, dict):
        return Invalid("", 'the line must be a JSON object like {"id": "...", ...}')
    return parse_mapping(record)


def _format_of(path: str) -> Format:
    if path == "-":
        raise ConfigError("reading standard input needs --format csv or --format jsonl")
    lowered = path.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise ConfigError(f"{path}: cannot tell the format; name it .csv or .jsonl, or pass --format")


Rows = (
    Source
    | Iterable[Mapping[str, Any] | LeadUpdate]
    | AsyncIterable[Mapping[str, Any] | LeadUpdate]
)


def _item(record: Mapping[str, Any] | LeadUpdate) -> Item:
    if isinstance(record, LeadUpdate):
        # model_copy(update=...) and model_construct skip validation: check again
        return _validate(record.model_dump(), _label(record.id), record.email)
    if isinstance(record, Mapping):
        return parse_mapping(record)
    return Invalid("", f"a row must be a dict or LeadUpdate, not {type(record).__name__}")


async def numbered(rows: Rows, *, batch: int = 256) -> AsyncIterator[RowItem]:
    """Any input as numbered items; standard input is read in a thread so the loop never blocks."""
    if isinstance(rows, Source):
        if not rows.rereadable:
            async for pair in _read_in_thread(iter(rows), batch):
                yield pair
            return
        for pair in rows:
            yield pair
        return
    if isinstance(rows, str | bytes | os.PathLike):
        raise TypeError(f"rows is a path ({rows!r}); pass Source(path) to read a file")
    row = 0
    if isinstance(rows, AsyncIterable):
        records = aiter(rows)
        try:
            async for record in records:
                row += 1
                yield row, _item(record)
        finally:  # close the caller's generator now, not whenever it is garbage-collected
            aclose = getattr(records, "aclose", None)
            if aclose is not None:
                await aclose()
    else:
        for record in rows:
            row += 1
            yield row, _item(record)


async def _read_in_thread(items: Iterator[RowItem], batch: int) -> AsyncIterator[RowItem]:
    """Batches from a blocking iterator, read by a daemon thread (a pipe that never ends must not
    keep the process alive after an interrupt); at most a few batches wait in memory, and the
    thread stops at its next batch once the reader is gone."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[list[RowItem] | BaseException | None] = asyncio.Queue()
    room = threading.Semaphore(4)  # batches handed over but not yet taken
    gone = threading.Event()

    def hand_over(chunk: list[RowItem] | BaseException | None) -> bool:
        while not room.acquire(timeout=0.5):
            if gone.is_set():
                return False
        if gone.is_set():
            return False
        try:
            loop.call_soon_threadsafe(chunks.put_nowait, chunk)
        except RuntimeError:  # the loop is closed: nobody is listening
            return False
        return True

    def pump() -> None:
        try:
            chunk: list[RowItem] = []
            for pair in items:
                chunk.append(pair)
                if len(chunk) == batch:
                    if not hand_over(chunk):
                        return
                    chunk = []
            if hand_over(chunk):
                hand_over(None)
        except Exception as exc:  # handed to the loop, which re-raises it in the job
            hand_over(exc)

    threading.Thread(target=pump, name="bulk-updater-stdin", daemon=True).start()
    try:
        while (chunk := await chunks.get()) is not None:
            room.release()
            if isinstance(chunk, BaseException):
                raise chunk
            for pair in chunk:
                yield pair
    finally:
        gone.set()
