"""Opening a CSV staff exported from somewhere: encoding, BOM, delimiter, and whole-file checks.

The whole file is checked before anything is written (a streamed pass over the bytes and the
records), so a file in the wrong encoding, without the needed columns, or empty fails with one
clear message and no half-import. Excel writes a UTF-8 BOM ("CSV UTF-8") or UTF-16 ("Unicode
text"); both are read. Some locales export with ";" or tabs; the header line tells which.

Every cell is read back through core.csv_safety.read_back: the apostrophe our exports and rejects
files put before a cell a spreadsheet would run as a formula is removed, so they import unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.csv_safety import read_back, read_back_row
from core.errors import InputError

BLOCK = 1 << 20
DELIMITERS = (",", ";", "\t")
csv.field_size_limit(min(sys.maxsize, 1 << 24))


@dataclass(frozen=True)
class Span:
    """A run of whole records, by byte offsets, that a worker process reads and parses itself."""

    start: int  # offset of the first record's first byte
    end: int  # offset just past the last record
    line: int  # line where the first record starts


@dataclass(frozen=True)
class CsvFile:
    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    total_rows: int
    first_bad_line: int | None  # first line that is not valid in `encoding`
    #: The data rows cut into spans of `span_rows` records, found by the whole-file check's
    #: CSV parse itself (so a quoted field holding a line break never straddles two spans);
    #: None when the file cannot be cut by bytes (UTF-16, or a bare carriage return).
    spans: tuple[Span, ...] | None = None

    def read_span(self, span: Span) -> Iterator[tuple[int, list[str]]]:
        """(line, fields) of every non-blank record in a span, exactly as records() gives them."""
        with self.path.open("rb") as handle:
            handle.seek(span.start)
            data = handle.read(span.end - span.start)
        text = data.decode(_span_encoding(self.encoding), "surrogateescape")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        escaped = "'" in text  # most files hold no apostrophe: nothing to read back
        line = span.line
        for values in reader:
            if values and any(values):
                yield line, read_back_row(values) if escaped else values
            line = span.line + reader.line_num

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(line where the record starts, fields) for every non-blank data row."""
        with self.path.open(encoding=self.encoding, errors="surrogateescape", newline="") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            next(reader, None)
            line = reader.line_num + 1
            for values in reader:
                if values and any(values):
                    yield line, read_back_row(values)
                line = reader.line_num + 1


def inspect_csv(path: Path, encoding: str | None = None, span_rows: int = 2000) -> CsvFile:
    """Check the whole file and describe it; InputError for anything that stops an import."""
    name = path.name
    try:
        with path.open("rb") as handle:
            head = handle.read(BLOCK)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc.strerror}") from None
    if not head.strip():
        raise InputError(f"{name}: the file is empty")
    encoding = _encoding(head, encoding)
    if head.startswith(b"PK\x03\x04") or (b"\x00" in head and not encoding.startswith("utf-16")):
        raise InputError(f"{name}: this is not a text CSV (a spreadsheet?); save it as CSV first")
    bad_line = _first_undecodable_line(path, encoding)
    with path.open(encoding=encoding, errors="surrogateescape", newline="") as handle:
        first_line = handle.readline()
    delimiter = max(DELIMITERS, key=first_line.count) if first_line.strip() else ","
    try:
        if not _can_split(encoding):
            raise _CannotSplit
        header, total, spans = _scan_bytes(path, encoding, delimiter, bad_line, span_rows)
    except _CannotSplit:
        header, total = _scan_text(path, encoding, delimiter, bad_line)
        spans = None
    if not any(h.strip() for h in header):
        raise InputError(f"{name}: the first line should name the columns, but it is blank")
    if total == 0:
        raise InputError(f"{name}: the file has a header but no data rows")
    header = [read_back(h).strip() for h in header]
    return CsvFile(path, encoding, delimiter, header, total, bad_line, spans)


class _CannotSplit(Exception):
    pass


def _can_split(encoding: str) -> bool:
    """Byte b"\n" is a line feed and nothing else in UTF-8 and the single-byte code pages."""
    name = codecs.lookup(encoding).name
    return name in ("utf-8-sig", "utf-8", "ascii", "latin-1") or name.startswith(
        ("cp125", "iso8859", "mac-")
    )


def _span_encoding(encoding: str) -> str:
    # A span never starts at the top of the file, so there is no BOM to skip there.
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _scan_text(
    path: Path, encoding: str, delimiter: str, bad_line: int | None
) -> tuple[list[str], int]:
    with path.open(encoding=encoding, errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, [])
            if bad_line == 1:
                raise InputError(f"{path.name}: the header line is not valid {encoding}")
            total = sum(1 for values in reader if values and any(values))
        except csv.Error as exc:
            raise InputError(
                f"{path.name}: line {reader.line_num}: not readable as CSV: {exc}"
            ) from None
    return header, total


def _scan_bytes(
    path: Path, encoding: str, delimiter: str, bad_line: int | None, span_rows: int
) -> tuple[list[str], int, tuple[Span, ...]]:
    """The same CSV parse as _scan_text, over lines read as bytes so that the offset where each
    record ends is known: csv.reader asks for a line only when its record needs one."""
    decode_as = _span_encoding(encoding)
    offset = 0

    with path.open("rb") as handle:
        if encoding == "utf-8-sig" and handle.read(3) != codecs.BOM_UTF8:
            handle.seek(0)
        offset = handle.tell()

        def lines() -> Iterator[str]:
            nonlocal offset
            for raw in handle:
                offset += len(raw)
                if b"\r" in raw and (raw.count(b"\r") > 1 or not raw.endswith(b"\r\n")):
                    # A text file splits lines at a lone CR too; bytes split at LF only.
                    raise _CannotSplit
                yield raw.decode(decode_as, "surrogateescape")

        reader = csv.reader(lines(), delimiter=delimiter)
        spans: list[Span] = []
        try:
            header = next(reader, [])
            if bad_line == 1:
                raise InputError(f"{path.name}: the header line is not valid {encoding}")
            total = in_span = 0
            start, line = offset, reader.line_num + 1
            for values in reader:
                if values and any(values):
                    total += 1
                    in_span += 1
                    if in_span == span_rows:
                        spans.append(Span(start, offset, line))
                        in_span = 0
                        start, line = offset, reader.line_num + 1
            if in_span:
                spans.append(Span(start, offset, line))
        except csv.Error as exc:
            raise InputError(
                f"{path.name}: line {reader.line_num}: not readable as CSV: {exc}"
            ) from None
    return header, total, tuple(spans)


def _encoding(head: bytes, asked: str | None) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if asked is None:
        return "utf-8-sig"  # reads files with and without the BOM alike
    try:
        name = codecs.lookup(asked).name
    except LookupError:
        raise InputError(f"unknown encoding {asked!r} (try utf-8, cp1252 or latin-1)") from None
    return "utf-8-sig" if name == "utf-8" else name


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lines_before = 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return lines_before + block.count(b"\n", 0, max(exc.start, 0)) + 1
            lines_before += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines_before + 1
    return None


def guess_encoding(path: Path) -> str | None:
    """What the bytes look like (charset-normalizer), to suggest in the error message."""
    from charset_normalizer import from_bytes

    with path.open("rb") as handle:
        best = from_bytes(handle.read(BLOCK)).best()
    return best.encoding if best else None
