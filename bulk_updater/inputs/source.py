"""`Source`: an input file (or standard input), opened and checked as a whole before any request.

CSV (delimiter `,` `;` TAB or `|`, found from the header line and the few after it), JSON lines
and `.xlsx`, in any encoding `encoding.py` knows. Every record read becomes exactly one `Row`: a
record that cannot be sent becomes `Invalid` with a message naming the column and the problem,
and reading goes on.
Only problems with the file as a whole (unreadable, not text, wrong encoding, no id column,
unknown columns) raise `InputError`, when the source is opened or checked.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from ..errors import ConfigError, InputError
from ..settings import tags_separator as separator_of
from .columns import Row, TablePlan
from .encoding import Encoding, detect_encoding, scan, text
from .header_sample import ABOVE, Sample, csv_sample, read_sample
from .hidden import HiddenRows
from .jsonrows import jsonl_rows
from .keep import Keep
from .mojibake import checking
from .opening import Format, delimiter_of, format_of, open_input
from .record_keys import KeyPlan
from .records import MAX_RECORD, TextRecord, json_lines
from .schema import ColumnMap
from .separators import likely_comma
from .tablerows import TableRows
from .tables import CsvTable, read_head, skip_lines
from .watch import FileWatch, prefix_sha256
from .xlsx import Workbook, sheet_header, table_records

log = logging.getLogger("bulk_updater")
_SNIFF_BYTES: Final = 8192


class Source:
    """A CSV, JSON-lines or `.xlsx` file, or standard input (`-`), opened and checked as a whole.

    `columns` maps headers to fields (`{"Lead ID": "id", "Owner": "-"}`), `ignore_unknown_columns`
    leaves out columns that mean no field instead of refusing the file. `delimiter`, `encoding`
    and `sheet` override what is found in the file (the first sheet of a workbook).
    `tags_separator` splits a `tags` cell; `header_row` is the line (the sheet's row) of the
    header when title rows are above it. `keep` names columns to carry into the report (each
    row's `ref`, `keep.py`); one that means no field is not sent. `hidden_rows`: `skip` leaves
    out the rows a sheet hides (each `skipped`), `send` sends them (`hidden.py`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: Format | None = None,
        columns: Mapping[str, str] | ColumnMap | None = None,
        ignore_unknown_columns: bool = False,
        delimiter: str | None = None,
        encoding: str | None = None,
        sheet: str | None = None,
        tags_separator: str = ";",
        header_row: int | None = None,
        keep: Sequence[str] = (),
        hidden_rows: str = "skip",
    ) -> None:
        path = os.fspath(path)
        self._wanted = keep
        self._keep: Keep | None = None
        try:
            self.tags_separator = separator_of(tags_separator)
        except ValueError as exc:
            raise ConfigError(f"--tags-separator {tags_separator!r}: {exc}") from None
        if header_row is not None and not 1 <= header_row <= 1_000_000:
            raise ConfigError(f"--header-row {header_row}: give a line number from 1 to 1000000")
        self.header_row = header_row
        self.hidden_rows = HiddenRows(hidden_rows)
        self.path = path
        self.name = "standard input" if path == "-" else path
        self.is_stdin = path == "-"
        self.columns = columns if isinstance(columns, ColumnMap) else ColumnMap(columns)
        self._raw = open_input(path)
        # A pipe, FIFO or terminal can be read once, and a read may block: such input is read in
        # a thread, and cannot be counted in advance or fingerprinted for --resume.
        self.rereadable = not self.is_stdin and stat.S_ISREG(os.fstat(self._raw.fileno()).st_mode)
        if not self.rereadable:
            log.debug("%s: waiting for the first lines", self.name)
        self._watch = FileWatch(self._raw.fileno(), path, self.name) if self.rereadable else None
        self.sheet: str | None = None
        self.encoding: Encoding | None = None
        self.delimiter: str | None = None
        self._sha256: str | None = None
        self.header: tuple[str, ...] | None = None
        try:
            head = self._peek()
            self.format: Format = format or format_of(path, head)
            if self.format == "xlsx":
                self._open_workbook(sheet, ignore_unknown_columns)
            else:
                self._open_text(head, encoding, delimiter, ignore_unknown_columns)
        except BaseException:
            self.close()
            raise

    def _peek(self) -> bytes:
        peek = getattr(self._raw, "peek", None)
        return peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if peek else b""

    def _open_workbook(self, sheet: str | None, ignore_unknown: bool) -> None:
        if not self.rereadable:
            raise ConfigError(f"{self.name}: an .xlsx workbook must be a file, not a pipe")
        self._book = Workbook(self.path, sheet)
        self._titles: deque[tuple[int, list[str]]] = deque(maxlen=ABOVE)  # above `header_row`
        self.sheet = self._book.sheet
        self._rows = self._book.rows()
        line, cells = sheet_header(self._rows, self.header_row, self.name, self.sheet, self._titles)
        self._plan(cells, ignore_unknown, line)
        self._header_line = line

    def _plan(self, header: list[str], ignore_unknown: bool, line: int) -> None:
        if self._wanted:
            self._keep = Keep.of_table(self._wanted, header, self.name)
        self._table = TablePlan(
            header,
            self.name,
            mapping=self.columns,
            ignore_unknown=ignore_unknown,
            tags_separator=self.tags_separator,
            sample=self._sample,
            kept=self.keep,
            line=line,
            comma_decimals=likely_comma(self.delimiter, self.encoding),
        )
        self._kept = self._table_rows()
        self.header = tuple(header)

    def _table_rows(self) -> TableRows:
        table = self._table
        return TableRows(
            table.columns, table.skip, self.tags_separator, names=table.names, mapping=self.columns
        )

    def _open_text(
        self, head: bytes, encoding: str | None, delimiter: str | None, ignore_unknown: bool
    ) -> None:
        self.encoding = detect_encoding(head, encoding)
        if b"\x00" in head and not self.encoding.wide:
            raise InputError(
                f"{self.name}: is not a text file (binary data found); export it as UTF-8 "
                f"{self.format.upper()} (or pass --encoding for UTF-16 without a BOM)"
            )
        self._text = text(self._raw, self.encoding, any_line_end=self.format == "csv")
        if self.format == "jsonl":
            self._keep = Keep.of_keys(self._wanted) if self._wanted else None
            self._keys = KeyPlan(self.columns, ignore_unknown=ignore_unknown, kept=self.keep)
            self._records: Iterator[TextRecord] = json_lines(self._text)
            return
        found = self._head = read_head(
            self._text,
            self.name,
            header_row=self.header_row,
            delimiter=delimiter_of(delimiter),
            mapping=self.columns,
            look_ahead=self.rereadable,
        )
        self.delimiter, self._csv, self._sep_line = found.delimiter, found.table, found.sep_line
        header = found.header
        if self.encoding.is_utf8 and any(_surrogates(cell) for cell in header):
            raise InputError(
                f"{self.name}: line {self._csv.header_line} is not UTF-8 text; the file was "
                "saved in another encoding: if it comes from Excel on Windows, pass --encoding "
                "cp1252"
            )
        self._plan(header, ignore_unknown, self._csv.header_line)

    def _sample(self) -> Sample:
        """The rows below the header and the file's text problem, to word what is wrong with
        the header (read only then: the source is refused anyway). None of a pipe's: it may wait."""
        if not self.rereadable:
            return Sample()
        if self.format == "xlsx":
            others = [name for name in self._book.sheets if name != self.sheet]
            return read_sample(self._rows, sheets=[str(self.sheet), *others], above=self._titles)
        assert self.encoding is not None
        return csv_sample(self.path, self.encoding, self._head, self.header_row, self.columns)

    def titles(self) -> str:
        """The lines above the header as read, for `--rejects` to keep: Excel's `sep=;` line (so
        Excel opens it alike), or the lines above `header_row` (so the same `header_row` reads
        it; a pipe's are read once: empty); empty for a sheet (`header_line`)."""
        if self.format != "csv":
            return ""
        if self._sep_line:
            return self._sep_line
        if self.header_row is None or not self.rereadable:
            return ""
        assert self.encoding is not None
        with open(self.path, "rb") as raw:
            stream = text(raw, self.encoding, any_line_end=True)
            return "".join(stream.readline(MAX_RECORD) for _ in range(self.header_row - 1))

    @property
    def header_line(self) -> int:
        """The sheet's row (or the line) of the header."""
        return getattr(self, "_header_line", self.header_row or 1)

    @property
    def keep(self) -> list[str]:
        """The kept columns, as the input names them."""
        return self._keep.names if self._keep is not None else []

    @property
    def dropped(self) -> list[str]:
        """Unknown columns left out (with `ignore_unknown_columns`)."""
        if self.format == "jsonl":
            return list(self._keys.dropped)
        return list(self._table.dropped)

    @property
    def footer(self) -> list[str]:
        """The footer left out (each row's one cell), once the rows were read."""
        return [] if self.format == "jsonl" else list(self._kept.footer)

    def notes(self) -> list[str]:
        """What was left out or looks wrong beside the rows (a footer, tags cells that look
        like lists), one line each, once the rows were read."""
        return [] if self.format == "jsonl" else self._kept.notes() + self.hidden_rows.notes()

    def plan(self) -> list[str]:
        """What each column means (`Job Title → jobTitle`); for JSON lines, each key met so far."""
        if self.format == "jsonl":
            return self._keys.plan()
        kept = [", kept in the report" if name in self.keep else "" for name in self._table.names]
        return [line + also for line, also in zip(self._table.plan(), kept, strict=True)]

    def options(self) -> dict[str, Any]:
        """How the input is read, for `--resume` to refuse a run that reads it otherwise."""
        return {
            "format": self.format,
            "encoding": str(self.encoding) if self.encoding else None,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "columns": self.columns.describe() or None,
            "tags_separator": self.tags_separator,
            "header_row": self.header_row,
            **({"keep": self.keep} if self.keep else {}),
            "hidden_rows": "send" if self.hidden_rows.send else "skip",
        }

    def __iter__(self) -> Iterator[Row]:
        try:
            if self.format == "jsonl":
                rows = jsonl_rows(self._records, self._keys, self._watch, self._legacy_pipe())
            else:
                rows = self._sheet_rows() if self.format == "xlsx" else self._csv_rows()
            rows = self._keep.rows(rows) if self._keep is not None else rows
            yield from self._watch.watched(rows) if self._watch is not None else rows
        finally:
            self.close()

    def _csv_rows(self) -> Iterator[Row]:
        legacy = self._legacy_pipe()  # its rows are checked one by one, as a file is ahead
        convert = self._table.convert if legacy is None else checking(self._table.convert, legacy)
        records = self._csv.rows()
        if self._watch is not None:
            records = self._watch.whole_records(records)
        return self._kept.rows(records, convert)

    def _legacy_pipe(self) -> str | None:
        """The legacy encoding of input that cannot be checked ahead (standard input), if so."""
        if self.rereadable or self.encoding is None or not self.encoding.legacy:
            return None
        return str(self.encoding)

    def _sheet_rows(self) -> Iterator[Row]:
        rows = self._kept.rows(table_records(self._rows, self._table), self._table.convert)
        return self.hidden_rows.rows(rows, self._book)

    def close(self) -> None:
        if getattr(self, "_book", None) is not None:
            self._book.close()
        if not self.is_stdin:  # a thread may be blocked reading it: it ends with the process
            self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check(self) -> None:
        """Read the whole file once: its sha256 for `--resume`, and whether it is valid text
        in its encoding (`InputError`, naming the first bad line, if not). Files only."""
        if self.rereadable and self._sha256 is None:
            if self.encoding is None:
                self._sha256 = scan(self.path, Encoding("latin-1", "binary"), self.name)
            else:
                csv = self.format == "csv"
                self._sha256 = scan(self.path, self.encoding, self.name, any_line_end=csv)
            if self._watch is not None:  # still being written: nothing is sent
                self._watch.vouch(self._sha256)

    def held_back(self, row: Row) -> bool:
        """Whether `row` is the file's last record, with no line break: it is sent once every
        other row is done and `recheck()` finds the file as it was (an exporter may be mid-line)."""
        return self._watch is not None and row.line == self._watch.open_end

    def recheck(self) -> None:
        """`InputModifiedError` if the file changed since it was opened (its rows all read)."""
        if self._watch is not None:
            self._watch.check(read=True)

    def fingerprint(self) -> str | None:
        """sha256 of the file's bytes, to tell on `--resume` whether the input changed; None
        for input that can be read only once (standard input, a pipe)."""
        self.check()
        return self._sha256

    @property
    def fingerprinted_size(self) -> int | None:
        """How many bytes `fingerprint()` covers, for a text file (`--resume` then continues a
        file that only grew by rows added at its end); None for a workbook or a pipe."""
        if self._watch is None or self._sha256 is None or self.format == "xlsx":
            return None
        return self._watch.size

    def prefix_sha256(self, size: int) -> str | None:
        """sha256 of the file's first `size` bytes if they end at a line break, else None."""
        return prefix_sha256(self.path, size) if self.format != "xlsx" else None

    def count(self) -> int | None:
        """How many records the file holds (one extra pass), or None for input read only once."""
        if not self.rereadable:
            return None
        if self.format == "xlsx":
            rows = self._book.estimate()
            return max(0, rows - self._header_line) if rows else None
        with open(self.path, "rb") as raw:
            encoding = self.encoding or Encoding("utf-8-sig", "default")
            stream = text(raw, encoding, any_line_end=self.format == "csv")
            if self.format == "jsonl":
                return sum(1 for _, line in json_lines(stream) if line is None or line.strip())
            start = self.header_row or 1
            skip_lines(stream, start - 1, self.name)
            table = CsvTable(stream, stream.readline(1 << 16), self.delimiter or ",", "", start)
            if self._sep_line:
                table.header()
            table.header(self.header_row)
            return sum(1 for _ in self._table_rows().kept(table.rows()))


def _surrogates(text: str) -> bool:
    """Whether bad UTF-8 survived decoding (as lone surrogates) in `text`."""
    return max(text, default="\0") >= "\udc80" and any("\udc80" <= c <= "\udcff" for c in text)
