"""Worker processes read the file by byte spans: every span must hold whole records, and give
the same rows and line numbers as reading the file from the top."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts import importer
from contacts.csvsource import CsvFile, inspect_csv
from core.errors import InputError

PIECES = ["a", "é", ",", '"', "\n", "\r\n", " ", "1"]
FIELD = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)


def spans_read(checked: CsvFile) -> list[tuple[int, list[str]]]:
    assert checked.spans is not None
    return [record for span in checked.spans for record in checked.read_span(span)]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(FIELD, min_size=2, max_size=2), min_size=1, max_size=30),
    span_rows=st.integers(1, 5),
    line_end=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_spans_give_the_rows_and_lines_of_a_read_from_the_top(
    tmp_path: Path, rows: list[list[str]], span_rows: int, line_end: str, bom: bool
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(["email", "notes"])
    writer.writerows([["x@example.com", "y"], *rows])  # one row that is surely not blank
    data = out.getvalue().encode()
    path = tmp_path / "spans.csv"
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data)
    try:
        checked = inspect_csv(path, span_rows=span_rows)
    except InputError:  # a file the check refuses has no spans to compare
        return
    expected = list(checked.records())
    if checked.spans is None:  # a bare CR in a field: the rows are read in the parent
        assert "\r" in "".join(v for _, values in expected for v in values)
        return
    assert spans_read(checked) == expected
    assert checked.total_rows == len(expected)
    assert all(len(list(checked.read_span(s))) <= span_rows for s in checked.spans)


def test_a_quoted_line_break_across_a_span_boundary(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(
        codecs.BOM_UTF8
        + b'email,notes\r\na@example.com,"one\r\ntwo"\r\n\r\nb@example.com,"x\nstill x"\r\n'
        + b"c@example.com,plain\r\n"
    )
    checked = inspect_csv(path, span_rows=1)
    assert checked.header == ["email", "notes"]
    assert checked.spans is not None and len(checked.spans) == 3
    assert spans_read(checked) == [
        (2, ["a@example.com", "one\r\ntwo"]),
        (5, ["b@example.com", "x\nstill x"]),
        (7, ["c@example.com", "plain"]),
    ]


@pytest.mark.parametrize(
    "content",
    [
        b"email\r\na@example.com\rb@example.com\r",  # old Mac line ends
        "email\na@example.com\n".encode("utf-16"),
    ],
    ids=["bare-cr", "utf16"],
)
def test_files_that_cannot_be_cut_by_bytes_have_no_spans(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content)
    checked = inspect_csv(path)
    assert checked.spans is None and len(list(checked.records())) >= 1


@pytest.mark.parametrize("workers", [0, 2])
def test_rejects_keep_their_line_numbers_when_workers_read_spans(
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    lines = ["email,phone,notes"]
    for n in range(20):
        if n % 7 == 3:
            lines.append(f'broken{n},,"a note\nover two lines"')  # the reject spans lines
        elif n == 12:
            lines.append("p1@example.com,(213) 555-0100,")  # (213) 555-0100 is p2's below
        else:
            lines.append(f"p{n}@example.com,(213) 555-01{n:02d},")
    path = write_csv("\n".join(lines) + "\n")
    summary = run_import(path, workers=workers)
    rejects = list(csv.reader(summary.rejects_path.open(encoding="utf-8")))
    assert rejects[0] == ["line", "reason", "email", "phone", "notes"]
    by_line = {int(r[0]): r for r in rejects[1:]}
    # Physical lines: n=3 starts on line 5, and each broken row before adds a line.
    assert sorted(by_line) == [5, 13, 16, 21]
    assert by_line[5][2:] == ["broken3", "", "a note\nover two lines"]
    assert by_line[16][2:] == ["p1@example.com", "(213) 555-0100", ""]
    assert by_line[16][1].startswith("conflict")
    assert summary.rejected == 4


def test_workers_yield_the_cpu_to_the_writing_process() -> None:
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context(importer._start_method())
    with ProcessPoolExecutor(
        1, mp_context=context, initializer=importer._init_worker, initargs=(None, None)
    ) as pool:
        worker_niceness = pool.submit(os.nice, 0).result()
    assert worker_niceness == min(os.nice(0) + importer.WORKER_NICENESS, 19)


@pytest.mark.parametrize("workers", [0, 2])
def test_partial_import_by_spans_rejects_undecodable_rows_on_their_lines(
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 4)
    rows = [f"P{n},p{n}@example.com\n".encode() for n in range(30)]
    rows[13] = "Zoë,zoe@example.com\n".encode("cp1252")  # line 15
    rows[22] = b'Ana,"ana@example.com"\n'  # a quoted field, still one line
    path = write_csv(b"first_name,email\n" + b"".join(rows))
    summary = run_import(path, partial=True, workers=workers)
    assert (summary.inserted, summary.rejected) == (29, 1)
    rejects = summary.rejects_path.read_text(encoding="utf-8").splitlines()
    assert rejects[1].startswith("15,holds bytes that are not valid text")
    assert rejects[1].endswith("Zo\ufffd,zoe@example.com")


def test_a_utf16_file_is_read_in_the_parent_and_checked_by_workers(
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    text = "first_name,email\n" + "".join(f"Zoë{n},z{n}@example.com\n" for n in range(10))
    path = write_csv(text.encode("utf-16") + "broken\n".encode("utf-16-le"))
    summary = run_import(path, workers=2)
    assert (summary.inserted, summary.rejected) == (10, 1)
    rejects = summary.rejects_path.read_text(encoding="utf-8").splitlines()
    assert rejects[1].startswith("12,")
