"""The codebase's own checks, run with the tests so CI enforces them: ruff, the layering
contract (import-linter), migrations that match the models, and our package names."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from core.settings import REPO_ROOT
from storage.db import upgrade
from storage.models import Base

OUR_PACKAGES = (
    "nurture", "web", "scheduler", "campaigns", "templates", "providers", "contacts", "staff",
    "storage", "core",
)  # fmt: skip


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a tool of the test extra with this interpreter (`python -m`), so it is the one
    installed beside the tests even when the environment is not activated."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True
    )


def test_ruff_finds_nothing() -> None:
    result = _tool("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_changes_nothing() -> None:
    result = _tool("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_point_one_way() -> None:
    """CLI → web → scheduler → campaigns → templates/providers → contacts → storage → core."""
    result = _tool("importlinter.cli", "lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr


def test_types_check() -> None:
    """mypy over the product packages (its settings are in pyproject.toml)."""
    result = _tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_type_ignore_says_why() -> None:
    """A `# type: ignore[code]` is followed by the reason, on the same line."""
    bare = []
    for package in OUR_PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found = re.search(r"#\s*type:\s*ignore(\[[^\]]*\])?(.*)$", line)
                if found and len(found.group(2).strip(" :-()")) < 8:
                    bare.append(f"{path.relative_to(REPO_ROOT)}:{number}")
    assert not bare, "say why after each type: ignore: " + ", ".join(bare)


def _readme_test_command() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the tests", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = _readme_test_command()
    assert "requirements.lock" in command and "pytest" in command
    assert command in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_lock_pins_every_direct_dependency() -> None:
    """requirements.lock holds an exact version for every dependency pyproject.toml names."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["test"],
    ]
    pinned = {
        re.split(r"[=<>\s;]", line, maxsplit=1)[0].lower()
        for line in (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    }
    for requirement in wanted:
        name = re.split(r"[\[<>=!~\s;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is not pinned in requirements.lock (run scripts/lock)"


def test_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'check.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == [], "add a revision under storage/migrations/versions: " + repr(diff)


def test_head_revision_is_the_newest_migration(tmp_path: Path) -> None:
    from storage.db import current_revision, head_revision, make_engine

    url = f"sqlite:///{tmp_path / 'head.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


@pytest.mark.parametrize("name", OUR_PACKAGES)
def test_no_other_distribution_provides_our_top_level_names(name: str) -> None:
    """PyPI has `scheduler`, `contacts`, `campaigns`, `templates`...: one installed beside us would
    silently replace our package outside the repository folder."""
    providers = set(importlib.metadata.packages_distributions().get(name, [])) - {"nurture"}
    assert not providers, f"{name!r} is also provided by {providers}"
    module = __import__(name)
    assert Path(module.__file__).resolve().is_relative_to(REPO_ROOT)


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nurture.cli.main", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "campaigns" in result.stdout


def test_ensure_schema_upgrades_a_database_made_by_an_older_release(tmp_path: Path) -> None:
    from sqlalchemy import inspect

    from storage.db import current_revision, ensure_schema, head_revision, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = make_engine(url)
    assert current_revision(engine) == "0001"
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    assert "staff_sessions" in inspect(engine).get_table_names()
    engine.dispose()
