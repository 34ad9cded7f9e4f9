"""The folder content versions are rendered from is private: what is in it is sent to patients,
so a folder another local user could write into is refused, not used."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.content_render import materialize, private_folder
from core.errors import ConfigError

FILES = {"01-hello.sms.txt": "Spinal Decompression LA: hello. Reply STOP to opt out."}


def test_a_new_cache_folder_is_made_private(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "nurture"
    root = materialize("abc123", "hello", FILES, cache)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert (root / "hello" / "01-hello.sms.txt").read_text() == FILES["01-hello.sms.txt"]


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_a_folder_others_may_write_into_is_refused(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(ConfigError, match="not a private folder"):
        materialize("abc123", "hello", FILES, shared)
    assert list(shared.iterdir()) == []  # nothing written there


def test_a_link_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ConfigError, match="not a private folder"):
        private_folder(tmp_path / "cache")
