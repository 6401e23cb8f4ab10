"""The chart picture on fixed data: its size, that it shows something, the capacity line at the
card's height, "now" where it is, the viewer's bookings in their own colour — read back from
the PNG's pixels — and the sentence it answers with when matplotlib is not installed."""

from __future__ import annotations

import io
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from matplotlib import colors, image

from bot.core.errors import GpubookError
from bot.core.phrases import Code
from bot.core.snapshots import BookingInfo, CalendarData, GpuInfo
from bot.core.timeparse import day_bounds
from bot.core.vocabulary import BookingStatus
from bot.render import chart
from bot.render.chart import chart_figure, chart_png
from handlers.users import UTC_ZONE
from tests.conftest import T0

GB = 1024
DAY = T0.replace(hour=0)
WIDTH = int(chart.SIZE_INCHES[0] * chart.DPI)
HEIGHT = int(chart.SIZE_INCHES[1] * chart.DPI)


def booking(id: int, user: str, gb: int, start_h: int, end_h: int) -> BookingInfo:
    start, end = DAY + timedelta(hours=start_h), DAY + timedelta(hours=end_h)
    return BookingInfo(
        id, "rtx-0", 24 * GB, user, "train", gb * GB, start, end, end,
        BookingStatus.UPCOMING, None, user, T0,
    )  # fmt: skip


CAL = CalendarData(
    GpuInfo(1, "rtx-0", 24 * GB, "", None, False),
    DAY,
    DAY + timedelta(days=1),
    [booking(1, "UALICE", 8, 9, 13), booking(2, "UBOB", 12, 10, 18)],
    [],
)


def pixels(png: bytes) -> np.ndarray:
    """RGB floats, rows top to bottom."""
    return image.imread(io.BytesIO(png), format="png")[:, :, :3]


def near(rgb: np.ndarray, colour: str, tolerance: float = 0.08) -> np.ndarray:
    return np.all(np.abs(rgb - np.array(colors.to_rgb(colour))) < tolerance, axis=-1)


def row_of(gb: float) -> float:
    """The image row of ``gb`` on the memory axis (0 at the bottom, 1.08 × capacity at the top)."""
    bottom, top = (1 - chart.MARGINS["bottom"]) * HEIGHT, (1 - chart.MARGINS["top"]) * HEIGHT
    return bottom - gb / (24 * 1.08) * (bottom - top)


def column_of(hours: float) -> float:
    left, right = chart.MARGINS["left"] * WIDTH, chart.MARGINS["right"] * WIDTH
    return left + hours / 24 * (right - left)


def test_the_picture_has_its_size_and_is_not_blank() -> None:
    rgb = pixels(chart_png(CAL, now=T0, tz=UTC_ZONE, viewer="UALICE"))
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50


def plot_area(rgb: np.ndarray) -> np.ndarray:
    """The inside of the axes (not the legend above it, nor the labels around it), with
    coordinates kept: everything outside is blanked."""
    inside = np.ones_like(rgb)
    rows = slice(int(row_of(24 * 1.08)) + 2, int(row_of(0)) - 2)
    columns = slice(int(column_of(0)) + 2, int(column_of(24)) - 2)
    inside[rows, columns] = rgb[rows, columns]
    return inside


def test_the_capacity_line_is_drawn_at_the_cards_size() -> None:
    rgb = plot_area(pixels(chart_png(CAL, now=T0, tz=UTC_ZONE)))
    rows = np.nonzero(near(rgb, chart.CAPACITY).sum(axis=1) > 100)[0]
    assert rows.size and abs(rows.mean() - row_of(24)) < 2, (rows, row_of(24))


def test_now_is_marked_where_it_is() -> None:
    now = DAY + timedelta(hours=6)  # nothing booked then: only the marker is dark there
    rgb = plot_area(pixels(chart_png(CAL, now=now, tz=UTC_ZONE)))
    columns = np.nonzero(near(rgb, chart.NOW, 0.15).sum(axis=0) > 20)[0]
    assert columns.size and abs(columns.mean() - column_of(6)) < 2, (columns, column_of(6))


def test_the_viewers_own_bookings_stand_out() -> None:
    mine = pixels(chart_png(CAL, now=T0, tz=UTC_ZONE, viewer="UALICE"))
    nobody = pixels(chart_png(CAL, now=T0, tz=UTC_ZONE))
    # Alice's 8 GB from 09:00 to 13:00: the middle of her band is hers.
    middle = (int(row_of(4)), int(column_of(11)))
    assert near(mine[middle], chart.MINE)
    assert not near(nobody[middle], chart.MINE)
    assert near(mine, chart.MINE).sum() > 1000
    assert near(nobody, chart.MINE).sum() < 50  # the legend's patch is only there for a viewer


def test_a_dst_days_hours_are_labelled_every_two_hours_of_real_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start, end = day_bounds(DAY.date().replace(month=3, day=29), berlin)  # 23 hours long
    cal = CalendarData(CAL.gpu, start, end, [], [])
    ax = chart_figure(cal, now=T0, tz=berlin).axes[0]
    ticks = ax.get_xticks()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:4] == ["00:00", "03:00", "05:00", "07:00"] and labels[-1] == "23:00"
    assert np.allclose(np.diff(ticks), 2 / 24)  # evenly spaced: no two labels crowd


def test_a_week_with_bookings_on_every_day_renders() -> None:
    bookings = [booking(i, f"U{i % 5}", 2, 24 * (i % 7) + 3, 24 * (i % 7) + 9) for i in range(40)]
    week = CalendarData(CAL.gpu, DAY, DAY + timedelta(days=7), bookings, [])
    rgb = pixels(chart_png(week, now=T0, tz=UTC_ZONE, week=True, viewer="U1"))
    assert rgb.shape == (HEIGHT, WIDTH, 3)


def test_without_matplotlib_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(GpubookError) as refused:
        chart_png(CAL, now=T0, tz=UTC_ZONE)
    assert refused.value.code is Code.CHART_NEEDS_MATPLOTLIB
    assert "pip install 'gpubook[chart]'" in str(refused.value)
