"""`gpubook chart`: the memory timeline written as a PNG file, from the command line."""

from __future__ import annotations

from pathlib import Path

from matplotlib import image

from tests.test_cli import clean_env, gpubook  # noqa: F401  (the fixtures)


def test_chart_writes_a_png_of_a_day_or_a_week(gpubook, clean_env: Path):  # noqa: F811
    gpubook("gpu", "add", "rtx-0", "24GB")
    gpubook("book", "rtx-0", "8GB", "--user", "U1", "--start", "10:00", "--for", "2h")

    day = gpubook("chart", "rtx-0", "--tz", "Europe/Berlin")
    assert (day.code, day.out) == (0, "Wrote the chart of rtx-0 to gpubook-rtx-0-2026-11-30.png.\n")
    assert image.imread(clean_env / "gpubook-rtx-0-2026-11-30.png").shape[:2] == (480, 1000)

    week = gpubook("chart", "rtx-0", "--week", "--date", "2026-12-01", "--output", "w.png")
    assert (week.code, week.out) == (0, "Wrote the chart of rtx-0 to w.png.\n")
    assert (clean_env / "w.png").read_bytes().startswith(b"\x89PNG")


def test_chart_refuses_what_does_not_read(gpubook, clean_env: Path):  # noqa: F811
    gpubook("gpu", "add", "rtx-0", "24GB")
    bad_date = gpubook("chart", "rtx-0", "--date", "funday")
    assert bad_date.code == 2 and "--date: I can't read funday as a day" in bad_date.err
    unknown = gpubook("chart", "nope")
    assert unknown.code == 1 and "GPU nope doesn't exist" in unknown.err
    both = gpubook("chart", "rtx-0", "--day", "--week")
    assert both.code == 2
    assert sorted(p.name for p in clean_env.iterdir()) == ["cli.db"]
