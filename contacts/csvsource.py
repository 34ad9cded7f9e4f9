"""Opening a CSV staff exported from somewhere: encoding, BOM, delimiter, and whole-file checks.

The whole file is checked before anything is written (a streamed pass over the bytes and the
records), so a file in the wrong encoding, without the needed columns, or empty fails with one
clear message and no half-import. Excel writes a UTF-8 BOM ("CSV UTF-8") or UTF-16 ("Unicode
text"); both are read. Some locales export with ";" or tabs; the header line tells which.
"""

from __future__ import annotations

import codecs
import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nurture.errors import InputError

BLOCK = 1 << 20
DELIMITERS = (",", ";", "\t")
csv.field_size_limit(min(sys.maxsize, 1 << 24))


@dataclass(frozen=True)
class CsvFile:
    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    total_rows: int
    first_bad_line: int | None  # first line that is not valid in `encoding`

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(line where the record starts, fields) for every non-blank data row."""
        with self.path.open(encoding=self.encoding, errors="surrogateescape", newline="") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            next(reader, None)
            line = reader.line_num + 1
            for values in reader:
                if values and any(values):
                    yield line, values
                line = reader.line_num + 1


def inspect_csv(path: Path, encoding: str | None = None) -> CsvFile:
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
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, [])
            if bad_line == 1:
                raise InputError(f"{name}: the header line is not valid {encoding}")
            total = sum(1 for values in reader if values and any(values))
        except csv.Error as exc:
            raise InputError(
                f"{name}: line {reader.line_num}: not readable as CSV: {exc}"
            ) from None
    if not any(h.strip() for h in header):
        raise InputError(f"{name}: the first line should name the columns, but it is blank")
    if total == 0:
        raise InputError(f"{name}: the file has a header but no data rows")
    return CsvFile(path, encoding, delimiter, [h.strip() for h in header], total, bad_line)


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
