"""Developer tool: rewrite the initial migration from the models.

Nurture has not been released, so its schema is still one migration (0001). Run
`python -m nurture.migrations.regenerate` after changing nurture/models.py; after the first
release, add a new revision with `alembic revision --autogenerate` instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from alembic import command

from nurture.db import alembic_config

VERSIONS = Path(__file__).resolve().parent / "versions"


def main() -> None:
    for old in VERSIONS.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as folder:
        command.revision(
            alembic_config(f"sqlite:///{folder}/empty.db"),
            message="initial schema",
            autogenerate=True,
            rev_id="0001",
        )
    (path,) = VERSIONS.glob("0001_*.py")
    text = path.read_text()
    text = text.replace("nurture.models.UTCDateTime()", "sa.DateTime()")
    text = re.sub(r"Create Date: .*\n", "", text)
    path.write_text("\n".join(line.rstrip() for line in text.splitlines()) + "\n")
    ruff = shutil.which("ruff")
    if ruff:  # keep the generated file as clean as hand-written code
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False)
        subprocess.run([ruff, "check", "--fix", "--quiet", str(path)], check=False)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
