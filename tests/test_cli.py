"""The `gpubook` admin command line and the settings it reads.

Commands run in-process through ``main`` with a frozen clock and a SQLite file of their own; one
test runs the installed console script to prove the entry point itself works.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.booking import DEFAULT_TEAM, Actor, BookingService, ServiceConfig
from bot.cli.main import main
from bot.core.clock import FrozenClock
from bot.core.errors import InputError
from bot.core.policy import Policy
from bot.runtime.config import Settings
from bot.runtime.settings_doc import SETTINGS_DOC
from storage.db import Database
from storage.migrate import alembic_config, upgrade

#: Monday 30 November 2026, 08:00 UTC: "now" for the in-process commands.
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
_SETTING_NAMES = [name for name, _, _ in SETTINGS_DOC if "<" not in name]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No gpubook settings from the outside world (nor a .env): only what each test sets."""
    for name in list(os.environ):
        if name.startswith("GPUBOOK_") or name in _SETTING_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def gpubook(clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run `gpubook ARGS…` in-process against a fresh SQLite file; returns code, stdout, stderr."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{clean_env / 'cli.db'}")
    clock = FrozenClock(NOW)

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv), clock=clock)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _book(gpubook, size: str, start: str, *extra: str, gpu: str = "a100") -> Result:
    return gpubook("book", gpu, size, "--user", "U1", "--start", start, "--task", "train", *extra)


def _export(gpubook) -> list[dict]:
    result = gpubook("export", "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)


# ---------------------------------------------------------------------------- db and gpus


def test_db_upgrade_reports_the_revision_and_is_idempotent(gpubook):
    first, second = gpubook("db", "upgrade"), gpubook("db", "upgrade")
    assert (first.code, second.code) == (0, 0)

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert first.out == second.out == f"Database is at revision {head}.\n"


def test_db_backup_copies_a_consistent_database_and_never_overwrites(gpubook, clean_env):
    assert gpubook("gpu", "add", "a100", "80GB").code == 0
    made = gpubook("db", "backup", "copy.db")
    assert (made.code, made.out) == (0, "Backed up to copy.db.\n")
    with sqlite3.connect(clean_env / "copy.db") as copy:
        assert copy.execute("SELECT name, capacity_mib FROM gpus").fetchall() == [("a100", 81920)]
    again = gpubook("db", "backup", "copy.db")
    assert (again.code, again.err) == (1, "copy.db already exists; give a new file name.\n")


def test_gpu_add_works_on_a_fresh_database_and_list_shows_a_table(gpubook):
    assert gpubook("gpu", "add", "A100", "80GB", "--description", "big card").code == 0
    assert gpubook("gpu", "add", "t4", "16GB").code == 0
    listing = gpubook("gpu", "list")
    assert listing.code == 0
    lines = listing.out.splitlines()
    assert lines[0].split() == ["NAME", "CAPACITY", "DESCRIPTION", "RETIRED"]
    assert lines[1].split() == ["a100", "80", "GB", "big", "card", "no"]
    assert lines[2].split() == ["t4", "16", "GB", "no"]


def test_gpu_list_json_has_exact_capacities(gpubook):
    gpubook("gpu", "add", "a100", "80GB", "--description", "big card")
    result = gpubook("gpu", "list", "--json")
    assert result.code == 0
    assert json.loads(result.out) == [
        {"name": "a100", "capacity_mib": 81920, "description": "big card", "retired": False}
    ]


def test_gpu_add_refuses_a_duplicate_with_the_service_sentence(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    result = gpubook("gpu", "add", "a100", "40GB")
    assert result.code == 1
    assert result.err == "A GPU named a100 already exists.\n"


def test_gpu_retire_without_bookings(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    result = gpubook("gpu", "retire", "a100")
    assert result.code == 0
    assert result.out == "Retired GPU 'a100'.\n"
    assert json.loads(gpubook("gpu", "list", "--json").out)[0]["retired"] is True


def test_gpu_retire_with_future_bookings_needs_cancel_future(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    booking_id = int(_book(gpubook, "20GB", "2026-11-30 10:00", "--for", "1h").out)
    refused = gpubook("gpu", "retire", "a100")
    assert refused.code == 1
    assert "still has 1 upcoming or active booking." in refused.err
    assert json.loads(gpubook("gpu", "list", "--json").out)[0]["retired"] is False

    done = gpubook("gpu", "retire", "a100", "--cancel-future")
    assert done.code == 0
    assert f"Cancelled booking #{booking_id} of U1." in done.out
    assert [b["status"] for b in _export(gpubook)] == ["cancelled"]


def test_gpu_edit_resizes_renames_describes_and_routes(gpubook):
    gpubook("gpu", "add", "a100", "80GB", "--description", "old")
    result = gpubook(
        "gpu", "edit", "A100", "--size", "40GB", "--rename", "a100-2", "--description", "rack 2"
    )
    assert (result.code, result.out) == (0, "Updated GPU 'a100-2': 40 GB.\n")
    routed = gpubook("gpu", "edit", "a100-2", "--channel", "C0GPU")
    assert routed.out == "Updated GPU 'a100-2': 40 GB, notifications in C0GPU.\n"
    assert json.loads(gpubook("gpu", "list", "--json").out) == [
        {"name": "a100-2", "capacity_mib": 40960, "description": "rack 2", "retired": False}
    ]
    cleared = gpubook("gpu", "edit", "a100-2", "--channel", "", "--description", "")
    assert cleared.out == "Updated GPU 'a100-2': 40 GB.\n"
    assert json.loads(gpubook("gpu", "list", "--json").out)[0]["description"] == ""


def test_gpu_edit_refusals(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    gpubook("gpu", "add", "t4", "16GB")
    _book(gpubook, "60GB", "2026-11-30 10:00", "--for", "1h")
    nothing = gpubook("gpu", "edit", "a100")
    assert nothing.code == 2 and "say what to change" in nothing.err
    assert gpubook("gpu", "edit", "a100", "--size", "lots").code == 2
    shrink = gpubook("gpu", "edit", "a100", "--size", "40GB")
    assert shrink.code == 1 and "can't shrink to 40 GB" in shrink.err
    clash = gpubook("gpu", "edit", "a100", "--rename", "t4")
    assert (clash.code, clash.err) == (1, "A GPU named t4 already exists.\n")
    missing = gpubook("gpu", "edit", "nope", "--size", "8GB")
    assert missing.code == 1 and "GPU nope doesn't exist" in missing.err
    assert json.loads(gpubook("gpu", "list", "--json").out)[0]["capacity_mib"] == 81920


# ---------------------------------------------------------------------------- book


def test_book_prints_only_the_new_id(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    first = _book(gpubook, "20GB", "2026-11-30T10:00:00+00:00", "--for", "2h")
    second = _book(gpubook, "50%", "now", "--end", "2026-11-30T09:00:00Z")
    assert (first.code, first.out, first.err) == (0, "1\n", "")
    assert (second.code, second.out) == (0, "2\n")
    rows = _export(gpubook)
    assert [(r["memory_mib"], r["start"], r["end"], r["status"]) for r in rows] == [
        (40960, "2026-11-30T08:00:00+00:00", "2026-11-30T09:00:00+00:00", "active"),
        (20480, "2026-11-30T10:00:00+00:00", "2026-11-30T12:00:00+00:00", "upcoming"),
    ]


def test_book_any_picks_a_gpu_that_fits(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    gpubook("gpu", "add", "t4", "16GB")
    assert _book(gpubook, "40GB", "now", "--for", "1h", gpu="any").code == 0
    assert _export(gpubook)[0]["gpu"] == "a100"


def test_naive_times_are_read_in_tz(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    result = _book(gpubook, "10GB", "2026-12-01 09:00", "--for", "1h", "--tz", "Europe/Berlin")
    assert result.code == 0, result.err
    row = _export(gpubook)[0]
    assert (row["start"], row["end"]) == ("2026-12-01T08:00:00+00:00", "2026-12-01T09:00:00+00:00")


def test_refusal_exits_1_with_the_suggestion_sentence(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    _book(gpubook, "60GB", "2026-11-30 09:00", "--end", "2026-11-30 11:00")
    result = _book(gpubook, "30GB", "2026-11-30 10:00", "--for", "2h")
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("Not enough memory on a100 for 10:00–12:00 UTC:")
    assert "Earliest fit on a100: 11:00–13:00 UTC." in result.err
    assert len(_export(gpubook)) == 1


def test_policy_refusal_exits_1(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    result = _book(gpubook, "10GB", "now", "--for", "8d")
    assert result.code == 1
    assert result.err.startswith("Bookings last at most 7d")


def test_end_is_read_from_the_start_as_until_is_in_slack(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    result = _book(gpubook, "10GB", "2026-12-01 09:00", "--end", "10:00")
    assert result.code == 0, result.err
    row = _export(gpubook)[0]
    assert (row["start"], row["end"]) == ("2026-12-01T09:00:00+00:00", "2026-12-01T10:00:00+00:00")


def test_an_end_that_wraps_into_a_long_booking_is_refused_with_a_form_that_books_it(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    wrapped = _book(gpubook, "10GB", "2026-12-01 14:00", "--end", "13:00")
    assert wrapped.code == 2
    assert "--end: 13:00 is earlier in the day than the start (Tue 1 Dec 14:00 UTC)" in wrapped.err
    assert "last 23h. If you mean that, give the end with its day, like '2026-12-02 13:00'" in (
        wrapped.err
    )
    assert _export(gpubook) == []
    meant = _book(gpubook, "10GB", "2026-12-01 14:00", "--end", "2026-12-02 13:00")
    assert meant.code == 0, meant.err
    assert _export(gpubook)[0]["end"] == "2026-12-02T13:00:00+00:00"


def test_a_start_in_the_dst_gap_is_booked_and_said_on_stderr(clean_env, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{clean_env / 'cli.db'}")
    clock = FrozenClock(datetime(2027, 3, 20, 8, 0, tzinfo=UTC))
    assert main(["gpu", "add", "a100", "80GB"], clock=clock) == 0
    capsys.readouterr()
    argv = ["book", "a100", "8GB", "--user", "U1", "--task", "x", "--tz", "Europe/Berlin"]
    code = main([*argv, "--start", "2027-03-28 02:30", "--for", "1h"], clock=clock)
    out, err = capsys.readouterr()
    assert (code, out) == (0, "1\n")
    assert err == (
        "02:30 does not exist on Sun 28 Mar 2027 in Europe/Berlin (the clocks go forward), "
        "so it was read as 03:30 CEST.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("20XB", "now", "--for", "1h"), "argument SIZE: I don't know the unit xb"),
        (("abc%", "now", "--for", "1h"), "argument SIZE:"),
        (("20GB", "someday", "--for", "1h"), "--start: I can't read someday as a time"),
        (("20GB", "now", "--end", "2026-13-01 10:00"), "--end: There is no date 2026-13-01"),
        (("20GB", "now", "--for", "1x"), "argument --for: I don't know the unit x"),
        (("20GB", "now", "--for", "1h", "--tz", "Mars/Base"), "unknown time zone 'Mars/Base'"),
        (("20GB", "now", "--for", "1h", "--end", "now"), "not allowed with argument"),
        (("20GB", "now"), "one of the arguments --end --for is required"),
    ],
)
def test_malformed_book_arguments_exit_2(gpubook, args, message):
    gpubook("gpu", "add", "a100", "80GB")
    result = _book(gpubook, *args)
    assert result.code == 2
    assert result.out == ""
    assert message in result.err
    assert "usage: gpubook book" in result.err
    assert _export(gpubook) == []


# ---------------------------------------------------------------------------- cancel


def test_cancel_as_admin_and_as_the_owner(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    first = _book(gpubook, "20GB", "2026-11-30 10:00", "--for", "1h").out.strip()
    second = _book(gpubook, "20GB", "2026-11-30 12:00", "--for", "1h").out.strip()
    as_admin = gpubook("cancel", first)
    assert as_admin.code == 0
    assert as_admin.out == f"Cancelled booking #{first} on 'a100' (10:00–11:00 UTC, U1).\n"
    assert gpubook("cancel", second, "--user", "U1").code == 0
    assert [r["status"] for r in _export(gpubook)] == ["cancelled", "cancelled"]


def test_cancel_as_another_user_is_refused(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    booking_id = _book(gpubook, "20GB", "2026-11-30 10:00", "--for", "1h").out.strip()
    result = gpubook("cancel", booking_id, "--user", "U2")
    assert result.code == 1
    assert result.err.startswith(f"Booking #{booking_id} belongs to @U1;")
    assert [r["status"] for r in _export(gpubook)] == ["upcoming"]


def test_cancel_unknown_or_started_booking_is_refused(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    started = _book(gpubook, "20GB", "now", "--for", "1h").out.strip()
    assert gpubook("cancel", "99").err.startswith("There is no booking #99.")
    result = gpubook("cancel", started)
    assert result.code == 1
    assert "has already started" in result.err


# ---------------------------------------------------------------------------- export


def test_export_json_and_csv_hold_every_booking(gpubook, clean_env):
    gpubook("gpu", "add", "a100", "80GB")
    gpubook("gpu", "add", "t4", "16GB")
    _book(gpubook, "20GB", "2026-11-30 10:00", "--for", "1h")
    gpubook("book", "t4", "8GB", "--user", "U2", "--start", "now", "--for", "2h", "--task", "a, b")
    gpubook("cancel", "1")
    expected = [
        {
            "id": 2,
            "gpu": "t4",
            "user": "U2",
            "task": "a, b",
            "memory_mib": 8192,
            "start": "2026-11-30T08:00:00+00:00",
            "end": "2026-11-30T10:00:00+00:00",
            "status": "active",
        },
        {
            "id": 1,
            "gpu": "a100",
            "user": "U1",
            "task": "train",
            "memory_mib": 20480,
            "start": "2026-11-30T10:00:00+00:00",
            "end": "2026-11-30T11:00:00+00:00",
            "status": "cancelled",
        },
    ]
    assert _export(gpubook) == expected

    to_stdout = gpubook("export", "--format", "csv")
    to_file = gpubook("export", "--format", "csv", "--output", "bookings.csv")
    assert to_file.out == "Wrote 2 bookings to bookings.csv.\n"
    from_file = (clean_env / "bookings.csv").read_text(encoding="utf-8")
    for text in (to_stdout.out, from_file):
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert rows == [{k: str(v) for k, v in row.items()} for row in expected]


def test_export_of_an_empty_database(gpubook):
    assert _export(gpubook) == []
    assert gpubook("export", "--format", "csv").out.strip() == (
        "id,gpu,user,task,memory_mib,start,end,status"
    )


# ---------------------------------------------------------------------------- help and errors


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db"],
        ["db", "upgrade"],
        ["gpu"],
        ["gpu", "add"],
        ["gpu", "list"],
        ["gpu", "edit"],
        ["gpu", "retire"],
        ["book"],
        ["cancel"],
        ["export"],
    ],
)
def test_every_command_has_help(gpubook, command):
    result = gpubook(*command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: {' '.join(['gpubook', *command])}")


def test_missing_command_exits_2(gpubook):
    result = gpubook()
    assert result.code == 2
    assert "required: COMMAND" in result.err


def test_settings_error_exits_2_with_the_sentence(gpubook, monkeypatch):
    monkeypatch.setenv("PORT", "abc")
    result = gpubook("gpu", "list")
    assert result.code == 2
    assert result.err == "gpubook: PORT='abc' is not valid; give a whole number from 1 to 65535.\n"


def test_unusable_database_exits_1(gpubook, monkeypatch, clean_env):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{clean_env / 'missing' / 'x.db'}")
    result = gpubook("gpu", "list")
    assert result.code == 1
    assert result.err.startswith("gpubook: The database at sqlite:///")
    assert "unable to open database file" in result.err


def test_the_cli_acts_in_the_configured_team(gpubook, monkeypatch):
    gpubook("gpu", "add", "a100", "80GB")
    monkeypatch.setenv("GPUBOOK_TEAM", "T_OTHER")
    assert json.loads(gpubook("gpu", "list", "--json").out) == []


def test_without_a_configured_team_the_cli_acts_in_the_databases_only_workspace(
    gpubook, monkeypatch
):
    """Next to a bot serving one Slack workspace, `gpubook gpu add` lands where Slack sees it."""
    monkeypatch.setenv("GPUBOOK_TEAM", "T0SLACK")  # as if the bot had created these
    gpubook("gpu", "add", "a100", "80GB")
    monkeypatch.delenv("GPUBOOK_TEAM")
    assert gpubook("gpu", "add", "t4", "16GB").code == 0
    assert [g["name"] for g in json.loads(gpubook("gpu", "list", "--json").out)] == ["a100", "t4"]

    monkeypatch.setenv("GPUBOOK_TEAM", "T0OTHER")
    gpubook("gpu", "add", "h100", "80GB")
    monkeypatch.delenv("GPUBOOK_TEAM")
    ambiguous = gpubook("gpu", "list")
    assert ambiguous.code == 1
    assert "several workspaces (T0OTHER, T0SLACK); set GPUBOOK_TEAM" in ambiguous.err


def test_console_script_books_and_exports(clean_env):
    """The installed `gpubook` entry point, in a process of its own, on the real clock."""
    script = Path(sys.executable).with_name("gpubook")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{clean_env / 'script.db'}"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *argv], cwd=clean_env, env=env, capture_output=True, text=True
        )

    assert run("gpu", "add", "a100", "80GB").returncode == 0
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    booked = run(
        "book", "a100", "20GB", "--user", "U1", "--start", start.isoformat(), "--for", "1h",
        "--task", "train",
    )  # fmt: skip
    assert (booked.returncode, booked.stdout, booked.stderr) == (0, "1\n", "")
    exported = run("export", "--format", "json")
    assert exported.returncode == 0
    [row] = json.loads(exported.stdout)
    assert row["start"] == start.isoformat()
    assert row["end"] == (start + timedelta(hours=1)).isoformat()
    refused = run("cancel", "1", "--user", "U2")
    assert refused.returncode == 1
    assert "belongs to @U1;" in refused.stderr


# ---------------------------------------------------------------------------- settings


def test_settings_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == "sqlite+aiosqlite:///gpubook.db"
    assert (settings.port, settings.team_id, settings.announce) == (3000, None, True)
    assert settings.team == DEFAULT_TEAM
    assert settings.reminder_before == timedelta(minutes=15)
    assert settings.policy == Policy()


def test_settings_read_every_documented_variable():
    """Setting every documented variable changes every field: the docs cover all settings."""
    env = {
        "DATABASE_URL": "postgresql://u:p@db/gpubook",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": "client-secret",
        "SLACK_SCOPES": "commands,chat:write",
        "SLACK_API_URL": "http://localhost:8080/api",
        "HOST": "127.0.0.1",
        "PORT": "8080",
        "GPUBOOK_PUBLIC_URL": "https://gpus.example.com",
        "GPUBOOK_CHANNEL": "CGPU",
        "GPUBOOK_ADMINS": " U1, U2 ,,",
        "GPUBOOK_TEAM": "T123",
        "GPUBOOK_ANNOUNCE": "off",
        "GPUBOOK_SWEEP_SECONDS": "5",
        "GPUBOOK_ANSWERS_AT_ONCE": "3",
        "GPUBOOK_REMINDER": "30m",
        "GPUBOOK_MIN_DURATION": "10m",
        "GPUBOOK_MAX_DURATION": "3d",
        "GPUBOOK_MAX_ADVANCE": "14d",
        "GPUBOOK_MAX_EXTENSION": "6h",
        "GPUBOOK_GROUP_PREMIUM": "U3",
        "GPUBOOK_MAX_EXTENSION_PREMIUM": "12h",
        "GPUBOOK_LOG_LEVEL": "debug",
        "GPUBOOK_AGENT_INTERVAL": "30s",
        "GPUBOOK_AGENT_URL": "https://gpubook.example.com/",
        "GPUBOOK_AGENT_TOKEN": "gpb_x",
        "GPUBOOK_AGENT_SOCKET": "/tmp/gpubook/agent.sock",
        "GPUBOOK_USAGE_RETENTION": "2d",
        "GPUBOOK_USAGE_TOLERANCE": "1GB",
        "GPUBOOK_IDLE_AFTER": "1h",
        "GPUBOOK_IDLE_RELEASE": "15m",
        "GPUBOOK_LINK_BY_EMAIL": "true",
        "GPUBOOK_LINK_EMAIL_DOMAIN": "example.org",
    }
    assert sorted(env) == sorted(
        _SETTING_NAMES + ["GPUBOOK_GROUP_PREMIUM", "GPUBOOK_MAX_EXTENSION_PREMIUM"]
    )
    settings, default = Settings.from_env(env), Settings()
    unchanged = [
        f.name for f in fields(Settings) if getattr(settings, f.name) == getattr(default, f.name)
    ]
    assert unchanged == []
    assert settings.admins == frozenset({"U1", "U2"})
    assert settings.slack_api_url == "http://localhost:8080/api/"
    assert settings.log_level == "DEBUG"
    assert settings.policy.user_groups == {"U3": "premium"}
    assert settings.policy.group_extensions == {"premium": timedelta(hours=12)}
    assert settings.agent_url == "https://gpubook.example.com"
    assert settings.agent_socket == Path("/tmp/gpubook/agent.sock")
    usage = settings.usage
    assert (usage.agent_interval, usage.retention, usage.idle_after, usage.idle_release) == (
        timedelta(seconds=30),
        timedelta(days=2),
        timedelta(hours=1),
        timedelta(minutes=15),
    )
    assert (usage.tolerance_mib, usage.silent_after) == (1024, timedelta(seconds=90))
    assert usage.link_email_domain == "example.org"
    config = settings.service_config()
    assert (config.policy, config.admins, config.default_channel, config.announce_new) == (
        settings.policy,
        settings.admins,
        "CGPU",
        False,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "abc", "PORT='abc' is not valid; give a whole number from 1 to 65535."),
        ("PORT", "70000", "PORT='70000' is not valid"),
        ("GPUBOOK_SWEEP_SECONDS", "0", "GPUBOOK_SWEEP_SECONDS='0' is not valid"),
        ("GPUBOOK_ANSWERS_AT_ONCE", "0", "GPUBOOK_ANSWERS_AT_ONCE='0' is not valid"),
        (
            "GPUBOOK_ANNOUNCE",
            "maybe",
            "GPUBOOK_ANNOUNCE='maybe' is not valid; write true or false.",
        ),
        ("GPUBOOK_REMINDER", "soon", "GPUBOOK_REMINDER='soon' is not a duration"),
        ("GPUBOOK_LOG_LEVEL", "loud", "GPUBOOK_LOG_LEVEL='loud' is not a log level"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL uses 'mysql'"),
        ("DATABASE_URL", "not a url", "DATABASE_URL='not a url' is not a database URL"),
        ("SLACK_API_URL", "ftp://x", "SLACK_API_URL='ftp://x' is not an http(s) URL"),
        ("GPUBOOK_MAX_DURATION", "long", "GPUBOOK_MAX_DURATION='long' is not a duration"),
    ],
)
def test_settings_refuse_malformed_values(name, value, message):
    with pytest.raises(InputError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(message)


def test_settings_read_dotenv_without_overriding_the_environment(clean_env, monkeypatch):
    (clean_env / ".env").write_text("PORT=4000\nGPUBOOK_CHANNEL=CDOTENV\n", encoding="utf-8")
    monkeypatch.setenv("GPUBOOK_CHANNEL", "CREAL")
    settings = Settings.from_env()
    assert (settings.port, settings.channel) == (4000, "CREAL")
    assert "PORT" not in os.environ


def test_release_ends_a_running_booking_and_refuses_an_upcoming_one(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    running = _book(gpubook, "20GB", "now", "--for", "2h").out.strip()
    later = _book(gpubook, "20GB", "2026-11-30 10:00", "--for", "1h").out.strip()
    released = gpubook("release", running)
    assert released.code == 0 and released.out.startswith(f"Released booking #{running} on 'a100'")
    refused = gpubook("release", later)
    assert refused.code == 1
    assert f"cancel it instead (gpubook cancel {later})" in refused.err
    assert [r["status"] for r in _export(gpubook)] == ["completed", "upcoming"]


SLACK_SYNTAX = ("`", "<@", "<!date", "/gpubook")


def test_nothing_the_cli_prints_carries_slack_syntax(gpubook):
    outputs = [gpubook("gpu", "add", "a100", "80GB"), gpubook("gpu", "add", "a100", "80GB")]
    running = _book(gpubook, "70GB", "now", "--for", "2h").out.strip()
    later = _book(gpubook, "20GB", "2026-11-30 10:00", "--for", "1h").out.strip()
    outputs += [
        gpubook("cancel", running),
        gpubook("release", later),
        gpubook("cancel", "999"),
        gpubook("cancel", later, "--user", "U2"),
        _book(gpubook, "40GB", "now", "--for", "1h"),
        _book(gpubook, "1GB", "now", "--for", "9d"),
        _book(gpubook, "1GB", "now", "--for", "1h", gpu="nope"),
        _book(gpubook, "20XB", "now", "--for", "1h"),
        gpubook("gpu", "edit", "a100", "--size", "1GB"),
        gpubook("gpu", "retire", "a100"),
        gpubook("gpu", "list"),
    ]
    shown = "".join(r.out + r.err for r in outputs)
    assert [s for s in SLACK_SYNTAX if s in shown] == [], shown


def test_export_gives_every_time_to_the_second_in_both_formats(gpubook, clean_env):
    """Bookings made in Slack start "now" and are released "now", to the microsecond."""
    url = f"sqlite:///{clean_env / 'cli.db'}"
    now = NOW.replace(microsecond=123456)

    async def book_and_release_in_slack() -> None:
        db = Database(url)
        await upgrade(db)
        service = BookingService(db, ServiceConfig(), FrozenClock(now))
        admin = Actor("U1", DEFAULT_TEAM, is_workspace_admin=True)
        await service.add_gpu(admin, "a100", "80GB")
        made = await service.create(
            admin, gpu="a100", memory="8GB", start=now, end=now + timedelta(hours=1), task="t"
        )
        service.clock = FrozenClock(now + timedelta(minutes=20, microseconds=654321))
        await service.release(admin, made.id)
        await db.dispose()

    asyncio.run(book_and_release_in_slack())
    [row] = _export(gpubook)
    assert (row["start"], row["end"]) == ("2026-11-30T08:00:00+00:00", "2026-11-30T08:20:00+00:00")
    csv_out = gpubook("export", "--format", "csv").out
    [csv_row] = list(csv.DictReader(io.StringIO(csv_out, newline="")))
    assert (csv_row["start"], csv_row["end"]) == (row["start"], row["end"])


# ---------------------------------------------------------------------------- groups and limits


def test_groups_and_limits_from_the_command_line(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    added = gpubook("group", "add", "premium", "U1", "U2")
    assert (added.code, added.out) == (0, "Group premium (@U1, @U2): no limits of its own.\n")
    assert gpubook("limits", "everyone", "max-open", "1").code == 0
    assert gpubook("limits", "premium", "max-held", "96", "GB").out == (
        "Group premium (@U1, @U2): max-held 96 GB.\n"
    )
    listed = gpubook("group", "list").out.splitlines()
    assert listed[0] == (
        "Group everyone (every member of the workspace): max-open 1, "
        "max-duration 7d, max-extension 1d, max-advance 60d."
    )
    assert _book(gpubook, "20GB", "2026-11-30T10:00:00+00:00", "--for", "2h").code == 0
    refused = _book(gpubook, "20GB", "2026-11-30T13:00:00+00:00", "--for", "2h")
    assert refused.code == 1 and "the max-open limit is 1" in refused.err
    forced = _book(gpubook, "20GB", "2026-11-30T13:00:00+00:00", "--for", "2h", "--override-limits")
    assert (forced.code, forced.out) == (0, "2\n")
    standing = gpubook("limits", "--user", "U1")
    assert "2 upcoming or active bookings; your max-open is 1." in standing.out
    bad = gpubook("limits", "premium", "max-held", "lots")
    assert bad.code == 1 and "I can't read lots as memory" in bad.err
    removed = gpubook("group", "remove", "premium")
    assert removed.out == "Group premium (nobody): no limits of its own.\n"


def test_groups_and_limits_check_user_ids_like_book_does(gpubook):
    refusals = ("is not a Slack user id", "Give a Slack user id")
    for argv in (
        ("limits", "--user", "bob"),
        ("group", "add", "premium", "bob"),
        ("group", "remove", "premium", ""),
    ):
        refused = gpubook(*argv)
        assert refused.code == 2
        assert any(words in refused.err for words in refusals), refused.err
    assert "premium" not in gpubook("group", "list").out


# ---------------------------------------------------------------------------- watches


def test_notify_keeps_lists_and_cancels_someones_watches(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    _book(gpubook, "80GB", "now", "--for", "20h")  # the card is full until tomorrow 04:00
    added = gpubook(
        "notify", "add", "20GB", "--user", "U1", "--for", "2h", "--on", "a100*",
        "--before", "2026-11-30 20:00", "--task", "eval",
    )  # fmt: skip
    assert (added.code, added.out) == (0, "1\n")
    listed = gpubook("notify", "list", "--user", "U1")
    assert listed.out == "#1: 20 GB for 2h on a100*, before 20:00 UTC\n"
    assert gpubook("notify", "list", "--user", "U2").out == "U2 has no open watches.\n"
    theirs = gpubook("notify", "cancel", "1", "--user", "U2")
    assert theirs.code == 1 and theirs.err.startswith("You have no watch #1.")
    cancelled = gpubook("notify", "cancel", "1", "--user", "U1")
    assert cancelled.out == "Watch #1 cancelled: no DM will come from it.\n"
    again = gpubook("notify", "cancel", "1")
    assert again.code == 1 and again.err.startswith("Watch #1 is over already")
    assert gpubook("notify", "list", "--user", "U1").out == "U1 has no open watches.\n"


def test_notify_refusals_exit_1_or_2_and_keep_nothing(gpubook):
    gpubook("gpu", "add", "a100", "80GB")
    assert gpubook("notify", "add", "lots", "--user", "U1", "--for", "2h").code == 2
    assert gpubook("notify", "add", "20GB", "--user", "bob", "--for", "2h").code == 2
    too_big = gpubook("notify", "add", "100GB", "--user", "U1", "--for", "2h")
    assert too_big.code == 1 and "100 GB" in too_big.err
    unknown = gpubook("notify", "add", "20GB", "--user", "U1", "--for", "2h", "--on", "h100*")
    assert unknown.code == 1 and unknown.err.startswith("No GPU matches h100*.")
    assert gpubook("notify", "list", "--user", "U1").out == "U1 has no open watches.\n"
