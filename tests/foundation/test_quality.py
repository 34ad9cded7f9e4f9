"""The codebase's own checks, run with the tests so CI enforces them: ruff, the layering
contract (import-linter), migrations that match the models, and our package names."""

from __future__ import annotations

import importlib.metadata
import shutil
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

OUR_PACKAGES = ("nurture", "contacts", "campaigns", "templates", "scheduler", "providers", "web")


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is part of the test extra"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "."], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_point_one_way() -> None:
    """CLI and web → scheduler → campaigns → templates/providers → contacts → storage."""
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extra"
    result = subprocess.run([lint], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'check.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == [], "add a revision under nurture/migrations/versions: " + repr(diff)


def test_head_revision_read_from_the_files_is_alembics_own_head() -> None:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config, head_revision

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == script.get_current_head()


def test_a_worker_on_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'current.db'}"
    upgrade(url)
    probe = (
        "import sys\n"
        "from storage.db import ensure_schema, make_engine\n"
        f"ensure_schema(make_engine({url!r}))\n"
        "import scheduler.dispatcher, nurture.app\n"
        "print(any(name.split('.')[0] in ('alembic', 'mako') for name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


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
