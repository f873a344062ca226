"""A local Ray starts where the home folder cannot be written.

Found by probing (2026-12-07): Ray 2.60 keeps the token of its default token authentication
in ``~/.ray/auth_token``; with a read-only home (a service account, a shared server) ``search``
and ``apply`` stopped on "permission denied: ~/.ray". The runtime now gets its token through
``$RAY_AUTH_TOKEN`` there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl_asd.orchestration.local_ray import token_without_home

_AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@pytest.fixture
def no_auth_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in _AUTH:  # set first, so that what the tests set is undone after them too
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    return monkeypatch


def test_an_unwritable_home_gets_a_token_in_the_environment(
        tmp_path: Path, no_auth_env: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    no_auth_env.setenv("HOME", str(blocker / "home"))  # below a file: nothing can be made

    assert token_without_home()
    token = os.environ["RAY_AUTH_TOKEN"]
    assert len(token) == 64 and int(token, 16) >= 0
    assert not token_without_home()  # set once; the runtime's processes inherit it
    assert os.environ["RAY_AUTH_TOKEN"] == token


@pytest.mark.parametrize("existing", [False, True])
def test_a_writable_home_or_an_existing_token_is_left_to_ray(
        tmp_path: Path, no_auth_env: pytest.MonkeyPatch, existing: bool) -> None:
    no_auth_env.setenv("HOME", str(tmp_path / "home"))  # missing but creatable
    if existing:
        (tmp_path / "home" / ".ray").mkdir(parents=True)
        (tmp_path / "home" / ".ray" / "auth_token").write_text("x" * 64)

    assert not token_without_home()
    assert "RAY_AUTH_TOKEN" not in os.environ
    assert not (tmp_path / "home").exists() or existing  # nothing written by the check


@pytest.mark.parametrize("key", _AUTH)
def test_the_users_own_auth_settings_win(
        tmp_path: Path, no_auth_env: pytest.MonkeyPatch, key: str) -> None:
    no_auth_env.setenv("HOME", str(tmp_path / "file" / "home"))
    (tmp_path / "file").write_text("")
    no_auth_env.setenv(key, "disabled" if key == "RAY_AUTH_MODE" else "given")

    assert not token_without_home()
    assert os.environ.get("RAY_AUTH_TOKEN") in (None, "given")
