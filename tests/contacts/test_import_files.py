"""Whole-file problems: a clear error and nothing imported, unless --partial says otherwise."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contacts.columns import ColumnMapping
from core.errors import InputError

GOOD = "first_name,email\nZoë,zoe@example.com\nJosé,jose@example.com\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"first_name,email\n", "has a header but no data rows"),
        (b"first_name,email\n\n,\n", "has a header but no data rows"),
        (b"first_name,last_name\nAna,Diaz\n", "no email or phone column found"),
        (b"email,Email\na@example.com,b@example.com\n", "names a column twice"),
        (b"PK\x03\x04binary", "not a text CSV"),
        (GOOD.encode("cp1252"), "line 2 is not valid utf-8-sig"),
    ],
)
def test_whole_file_errors_import_nothing(
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    count_contacts: Callable[[], int],
    content: bytes,
    message: str,
) -> None:
    path = write_csv(content)
    with pytest.raises(InputError, match=message):
        run_import(path)
    assert count_contacts() == 0
    assert not path.with_name("contacts.rejects.csv").exists()


def test_wrong_encoding_late_in_the_file_imports_nothing_and_says_what_to_do(
    write_csv: Callable[..., Path],
    run_import: Callable[..., Any],
    count_contacts: Callable[[], int],
) -> None:
    rows = "".join(f"P{n},p{n}@example.com\n" for n in range(3000))
    path = write_csv(
        ("first_name,email\n" + rows).encode() + "Zoë,zoe@example.com\n".encode("cp1252")
    )
    with pytest.raises(InputError) as caught:
        run_import(path)
    assert "line 3002 is not valid" in str(caught.value)
    assert "--encoding" in str(caught.value) and "--partial" in str(caught.value)
    assert count_contacts() == 0


def test_partial_imports_the_readable_rows_and_rejects_the_rest(
    write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    content = b"first_name,email\nAna,ana@example.com\n" + "Zoë,zoe@example.com\n".encode("cp1252")
    summary = run_import(write_csv(content), partial=True)
    assert (summary.inserted, summary.rejected) == (1, 1)
    rejects = summary.rejects_path.read_text(encoding="utf-8").splitlines()
    assert rejects[1].startswith("3,holds bytes that are not valid text")


def test_the_encoding_can_be_named(
    nurture_app: Any, write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    summary = run_import(write_csv(GOOD.encode("cp1252")), encoding="cp1252")
    assert summary.inserted == 2


@pytest.mark.parametrize(
    "content",
    [
        codecs.BOM_UTF8 + GOOD.encode(),  # Excel "CSV UTF-8"
        GOOD.encode("utf-16"),  # Excel "Unicode text" (with its BOM)
        GOOD.replace(",", ";").encode(),  # a European-locale export
        GOOD.replace(",", "\t").replace("\n", "\r\n").encode(),  # tabs and CRLF
    ],
    ids=["utf8-bom", "utf16", "semicolons", "tabs-crlf"],
)
def test_boms_delimiters_and_line_ends(
    write_csv: Callable[..., Path], run_import: Callable[..., Any], content: bytes
) -> None:
    summary = run_import(write_csv(content))
    assert (summary.inserted, summary.rejected) == (2, 0)
    assert summary.columns[0] == ("first_name", "first_name")  # the BOM is not in the name


def test_a_mapping_naming_a_missing_column_is_an_error(
    write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    mapping = ColumnMapping.from_options(["phone=Mobile Number"])
    with pytest.raises(InputError, match="no such column"):
        run_import(write_csv(GOOD), mapping=mapping)


def test_mapping_files_and_options_are_checked(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text('ignore = ["Notes"]\n[columns]\nemail = "E-mail"\n[custom]\nplan = "Plan"\n')
    loaded = ColumnMapping.from_file(mapping)
    assert loaded.fields == {"email": "E-mail"} and loaded.custom == {"plan": "Plan"}
    assert loaded.ignore == ("Notes",)
    mapping.write_text('[custom]\nplan = "Plan"\nignore = ["Notes"]\n')  # ignore inside [custom]
    with pytest.raises(InputError, match="name = "):
        ColumnMapping.from_file(mapping)
    mapping.write_text('[columns]\nmail = "E-mail"\n')
    with pytest.raises(InputError, match="unknown field"):
        ColumnMapping.from_file(mapping)
    mapping.write_text("[columns\n")
    with pytest.raises(InputError, match="not a readable TOML"):
        ColumnMapping.from_file(mapping)
    with pytest.raises(InputError, match="our_field=Their Header"):
        ColumnMapping.from_options(["email"])


def test_a_stale_rejects_file_is_removed(
    write_csv: Callable[..., Path], run_import: Callable[..., Any]
) -> None:
    first = run_import(write_csv("email\nbroken\nok@example.com\n"))
    assert first.rejects_path is not None and first.rejects_path.exists()
    second = run_import(write_csv("email\nok@example.com\n"))
    assert second.rejects_path is None and not first.rejects_path.exists()
