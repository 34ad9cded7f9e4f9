"""Where dashboard imports keep their files, and how a forgotten person leaves them.

An upload is kept only while its import runs (contacts.jobs deletes it when the job ends): its
rows are in the database by then, the rejected ones in the rejects file, and a copy of a whole
patient list lying in var/imports serves no one (CCPA data minimisation). The rejects file stays
for staff to download and fix, so `forget` rewrites it without the person's rows rather than
deleting everyone else's. An upload still present (an import running, or a process that died
mid-import) is deleted if it quotes the person: its encoding and layout are whatever staff
exported, so it cannot safely be rewritten, and an import that loses it stops with an error on
its job; staff upload the file again.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from contacts.forget import Person
from core.csv_safety import csv_writer, read_back_row

log = logging.getLogger("nurture.contacts.import_files")

#: How contacts.importer.RejectsFile names the rejects file beside its upload.
REJECTS_SUFFIX = ".rejects.csv"


def imports_folder(outbox_dir: Path) -> Path:
    """Uploads and rejects files live beside the outbox (var/imports by default)."""
    return Path(outbox_dir).resolve().parent / "imports"


class ImportFiles:
    """The imports folder, as one of the places `forget` erases a person from."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def forget(self, person: Person) -> int:
        if not self.folder.is_dir():
            return 0
        changed = 0
        for path in sorted(self.folder.rglob("*.csv")):
            if path.name.endswith(REJECTS_SUFFIX):
                changed += _rewrite_rejects(path, person)
            elif _quotes(path, person):
                path.unlink(missing_ok=True)
                log.info("deleted upload %s: it quoted a forgotten contact", path.name)
                changed += 1
        return changed


def _rewrite_rejects(path: Path, person: Person) -> int:
    """The rejects file without the person's rows (contacts.importer writes it: UTF-8, commas,
    a header line). Written beside and moved over the old one, so a download never sees half.
    Cells are read back and written again through core.csv_safety, so they stay formula-safe."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = [read_back_row(row) for row in csv.reader(handle)]
    kept = [row for index, row in enumerate(rows) if index == 0 or not _names(row, person)]
    if len(kept) == len(rows):
        return 0
    temporary = path.with_name(f".{path.name}.forget")
    with temporary.open("w", newline="", encoding="utf-8") as out:
        csv_writer(out).writerows(kept)
    os.replace(temporary, path)
    return 1


def _names(row: list[str], person: Person) -> bool:
    return person.mentioned_in(" ".join(row))  # joined: first and last name are two cells


def _quotes(path: Path, person: Person) -> bool:
    """Whether an upload in any of the encodings staff export (UTF-8, UTF-16, Windows-1252)
    mentions the person."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return person.mentioned_in(data.decode("utf-16", "replace"))
    return person.mentioned_in(data.decode("utf-8", "replace")) or person.mentioned_in(
        data.decode("cp1252", "replace")
    )
