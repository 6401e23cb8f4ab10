"""Charts and calendar links in the console: the picture lands in a file whose path is shown."""

from __future__ import annotations

from pathlib import Path

from tests.test_console import Console, clock, console, console_tz  # noqa: F401  (the fixtures)


def test_a_chart_is_written_to_a_file_and_its_path_shown(
    console: Console,  # noqa: F811
    tmp_path: Path,
) -> None:
    console.session.screen.files_dir = tmp_path / "files"
    console.run("book rtx-0 8GB 10:00 for 2h train resnet")
    screen = console.run("chart rtx-0 week")
    assert "sent you the chart of `rtx-0` in a direct message" in screen
    [saved] = (tmp_path / "files").iterdir()
    assert saved.name.endswith("-gpubook-rtx-0-2026-01-05-week.png")
    assert saved.read_bytes().startswith(b"\x89PNG")
    assert "DM from gpubook to you" in screen and f"saved to {saved}" in screen


def test_the_calendars_chart_button_and_a_link_without_public_url(
    console: Console,  # noqa: F811
    tmp_path: Path,
) -> None:
    console.session.screen.files_dir = tmp_path / "files"
    screen = console.run("calendar rtx-0")
    assert "[4] Chart" in screen
    screen = console.run("4")
    [saved] = (tmp_path / "files").iterdir()
    assert f"saved to {saved}" in screen and saved.name.endswith("-2026-01-05.png")
    assert "GPUBOOK_PUBLIC_URL" in console.run("calendar link")
