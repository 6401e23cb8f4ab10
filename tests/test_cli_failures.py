"""When a `gpubook` command cannot do its job: the sentence names what failed (a file, the
database, the machine) and why, a closed pipe ends quietly, and no traceback ever shows.

Pipes are tested with real processes: only a real closed pipe behaves like `| head`.
"""

# The `gpubook` and `clean_env` fixtures come from test_cli; pytest finds them by name.
# ruff: noqa: F811

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main as cli_main
from bot.cli.files import cannot_write
from bot.cli.wording import terminal_text
from tests.conftest import PG_URL
from tests.test_cli import clean_env, gpubook  # noqa: F401

SCRIPT = Path(sys.executable).with_name("gpubook")


def _script(env_dir: Path, *argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{env_dir / 'pipe.db'}"}
    return subprocess.Popen(
        [str(SCRIPT), *argv],
        cwd=env_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_backup_into_a_missing_folder_names_the_folder(gpubook, clean_env):
    target = clean_env / "no" / "such" / "b.db"
    result = gpubook("db", "backup", str(target))
    assert result.code == 1
    assert result.err == f"Can't write {target}: the folder {target.parent} does not exist.\n"
    assert "Traceback" not in result.err


def test_backup_onto_a_folder_is_refused_and_leaves_it_alone(gpubook, clean_env):
    (clean_env / "dir").mkdir()
    result = gpubook("db", "backup", str(clean_env / "dir"))
    assert (result.code, result.err) == (
        1,
        f"{clean_env / 'dir'} already exists; give a new file name.\n",
    )
    assert list((clean_env / "dir").iterdir()) == []


def test_export_to_a_missing_folder_blames_the_file_not_the_database(gpubook, clean_env):
    target = clean_env / "nowhere" / "x.json"
    result = gpubook("export", "--format", "json", "--output", str(target))
    assert result.code == 1
    assert result.err == f"Can't write {target}: the folder {target.parent} does not exist.\n"


def test_export_onto_a_folder_says_so(gpubook, clean_env):
    result = gpubook("export", "--format", "csv", "--output", str(clean_env))
    assert (result.code, result.err) == (1, f"Can't write {clean_env}: is a directory.\n")


def test_a_write_the_system_refuses_gives_its_reason():
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/x.csv")
    full = OSError(errno.ENOSPC, "No space left on device")
    assert terminal_text(cannot_write("/srv/x.csv", denied)) == (
        "Can't write /srv/x.csv: permission denied."
    )
    assert terminal_text(cannot_write("/srv/x.csv", full)) == (
        "Can't write /srv/x.csv: no space left on device."
    )


@pytest.mark.slow
def test_a_closed_pipe_ends_the_export_quietly(tmp_path):
    """`gpubook export | head`: here the reader is gone before the first write."""
    assert _script(tmp_path, "gpu", "add", "a100", "80GB").wait() == 0
    export = _script(tmp_path, "export", "--format", "csv")
    assert export.stdout is not None
    export.stdout.close()  # no reader left: every write to the pipe fails with EPIPE
    _, err = export.communicate()
    assert (export.returncode, err) == (cli_main.EXIT_BROKEN_PIPE, b"")


def test_an_unreadable_dotenv_is_named(gpubook, clean_env):
    (clean_env / ".env").write_bytes(b"PORT=\xff3000\n")
    result = gpubook("gpu", "list")
    assert (result.code, result.err) == (2, "gpubook: Can't read .env: it is not UTF-8 text.\n")


def test_a_database_port_that_is_not_a_number_is_a_settings_error(gpubook, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@localhost:port/db")
    result = gpubook("db", "upgrade")
    assert result.code == 2
    assert "DATABASE_URL='postgresql://u@localhost:port/db' is not a database URL" in result.err


def test_a_database_that_does_not_exist_is_blamed_in_one_line(gpubook, monkeypatch):
    """The server answers (or not) but the database is not there: one sentence, no traceback."""
    url = PG_URL.rsplit("/", 1)[0] + "/gpubook_no_such_database"
    monkeypatch.setenv("DATABASE_URL", url)
    result = gpubook("db", "upgrade")
    assert result.code == 1
    assert result.err.startswith(f"gpubook: The database at {url} failed: ")
    assert result.err.count("\n") == 1


def test_a_file_that_is_not_a_database_is_blamed_on_the_database(gpubook, monkeypatch, clean_env):
    (clean_env / "notes.txt").write_text("hello\n" * 100, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{clean_env / 'notes.txt'}")
    result = gpubook("gpu", "list")
    assert (result.code, result.err) == (
        1,
        f"gpubook: The database at sqlite:///{clean_env / 'notes.txt'} failed: "
        "file is not a database.\n",
    )


def test_the_last_resort_says_one_line_and_exits_non_zero(gpubook, monkeypatch):
    def broken(*_: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_main, "COMMANDS", (_with_handler(broken),))
    result = gpubook("broken")
    assert result.code == 1
    assert result.err == (
        "gpubook: Stopped by an unexpected error (RuntimeError: boom); nothing more was done. "
        "Please report it.\n"
    )


def test_a_system_refusal_is_not_called_a_bug(gpubook, monkeypatch):
    def port_taken(*_: object) -> int:
        raise OSError(errno.EADDRINUSE, "address already in use")

    monkeypatch.setattr(cli_main, "COMMANDS", (_with_handler(port_taken),))
    result = gpubook("broken")
    assert (result.code, result.err) == (
        1,
        f"gpubook: Stopped: the system said [Errno {errno.EADDRINUSE}] address already in use.\n",
    )


def _with_handler(handler):
    def register(commands) -> None:
        from bot.cli.registry import add_command

        add_command(commands, "broken", "fails", handler)

    return register
