"""A GPU's memory timeline as a PNG: stacked bands per booking, the card's capacity, "now".

Drawn with matplotlib's object API (a new :class:`~matplotlib.figure.Figure` per chart on the
Agg canvas, never pyplot, whose global state leaks figures in a server and is not thread-safe),
so callers can render off the event loop with ``asyncio.to_thread``. matplotlib is an optional
dependency (the ``chart`` extra): it is imported when a chart is drawn, and without it the
caller gets a refusal that says what to install.

Times on the axis are in the viewer's zone; the viewer's own bookings are drawn in a strong
colour, everyone else's in soft ones (one per owner); each band is labelled with its owner and
task where its widest stretch has room for a few characters.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.core.errors import GpubookError
from bot.core.formats import format_size
from bot.core.phrases import Code
from bot.core.snapshots import CalendarData
from bot.core.timefmt import zone_label
from bot.core.timeline import Band, stack

#: Figure size at :data:`DPI`: 1000 × 480 pixels.
SIZE_INCHES = (10.0, 4.8)
DPI = 100
#: Where the plotting area sits in the figure (fractions), fixed so pixels are predictable.
MARGINS = {"left": 0.07, "right": 0.98, "bottom": 0.13, "top": 0.90}
MIB_PER_GB = 1024
MINE = "#e8590c"
MINE_EDGE = "#7a2e00"
OTHERS = ("#a5d8ff", "#bac8ff", "#d0bfff", "#c3fae8", "#dee2e6", "#99e9f2", "#ffd8a8")
CAPACITY = "#c92a2a"
NOW = "#212529"
LABEL_POINTS = 8
#: Rough width of one label character, and the height a label needs, in pixels.
CHAR_PX = 6.0
LINE_PX = 12.0


def chart_png(
    cal: CalendarData,
    *,
    now: datetime,
    tz: tzinfo,
    week: bool = False,
    viewer: str | None = None,
    names: Mapping[str, str] | None = None,
) -> bytes:
    """The chart of ``cal`` as PNG bytes; ``viewer``'s bookings stand out, ``names`` maps user
    ids to the names shown (an id without a name is shown as is)."""
    fig = chart_figure(cal, now=now, tz=tz, week=week, viewer=viewer, names=names)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def chart_figure(
    cal: CalendarData,
    *,
    now: datetime,
    tz: tzinfo,
    week: bool = False,
    viewer: str | None = None,
    names: Mapping[str, str] | None = None,
) -> Any:
    """The chart as a matplotlib ``Figure`` on the Agg canvas (see :func:`chart_png`)."""
    try:
        from matplotlib import dates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PolyCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:
        raise GpubookError(Code.CHART_NEEDS_MATPLOTLIB) from None

    fig = Figure(figsize=SIZE_INCHES, dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**MARGINS)
    ax = fig.subplots()
    capacity_gb = cal.gpu.capacity_mib / MIB_PER_GB
    x0, x1 = dates.date2num(cal.start), dates.date2num(cal.end)
    ax.set_xlim(x0, x1)
    ax.set_ylim(0, capacity_gb * 1.08)

    bands = stack(cal.bookings, cal.start, cal.end)
    colours = _colours(bands, viewer)
    # One conversion for every instant (date2num per datetime is the slow part of a week).
    instants = sorted({t for band in bands for p in band.pieces for t in (p.start, p.end)})
    x = dict(zip(instants, dates.date2num(instants), strict=True)) if instants else {}
    polygons, faces, edges = [], [], []
    for band in bands:
        mine = band.booking.user_id == viewer
        for piece in band.pieces:
            left, right = x[piece.start], x[piece.end]
            low, high = piece.bottom_mib / MIB_PER_GB, piece.top_mib / MIB_PER_GB
            polygons.append([(left, low), (left, high), (right, high), (right, low)])
            faces.append(colours[band.booking.id])
            edges.append(MINE_EDGE if mine else "white")
    ax.add_collection(PolyCollection(polygons, facecolors=faces, edgecolors=edges, linewidths=0.8))
    _label(ax, bands, names or {}, x, (x0, x1), capacity_gb * 1.08)

    _marks(ax, cal, now, viewer, dates.date2num(now), Patch, Line2D)
    _time_axis(ax, cal, tz, week, dates)
    ax.set_ylabel("memory held (GB)")
    ax.set_xlabel(f"times in {zone_label(tz, cal.start)}")
    ax.set_title(f"{cal.gpu.name} — {_when(cal, tz, week)}", loc="left")
    ax.grid(axis="y", color="#e9ecef", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig


def _marks(
    ax: Any,
    cal: CalendarData,
    now: datetime,
    viewer: str | None,
    now_x: float,
    patch: Any,
    line: Any,
) -> None:
    """The capacity line, "now" when it is in the window, and the legend above the plot (right
    of the title, so it never hides a band)."""
    ax.axhline(cal.gpu.capacity_mib / MIB_PER_GB, color=CAPACITY, linestyle="--", linewidth=1.5)
    legend: list[Any] = []
    if viewer is not None:
        legend.append(patch(facecolor=MINE, edgecolor=MINE_EDGE, label="your bookings"))
    legend.append(patch(facecolor=OTHERS[0], label="others' bookings" if viewer else "bookings"))
    capacity = f"capacity {format_size(cal.gpu.capacity_mib)}"
    legend.append(line([], [], color=CAPACITY, linestyle="--", label=capacity))
    if cal.start <= now < cal.end:
        ax.axvline(now_x, color=NOW, linestyle=":", linewidth=1.2)
        legend.append(line([], [], color=NOW, linestyle=":", label="now"))
    ax.legend(
        handles=legend,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=len(legend),
        frameon=False,
        fontsize=LABEL_POINTS,
    )


def _colours(bands: list[Band], viewer: str | None) -> dict[int, str]:
    """The viewer's bookings in :data:`MINE`; the others one soft colour per owner."""
    owners: dict[str, str] = {}
    for band in bands:
        user = band.booking.user_id
        if user != viewer and user not in owners:
            owners[user] = OTHERS[len(owners) % len(OTHERS)]
    return {
        b.booking.id: MINE if b.booking.user_id == viewer else owners[b.booking.user_id]
        for b in bands
    }


def _label(
    ax: Any,
    bands: list[Band],
    names: Mapping[str, str],
    x: Mapping[datetime, float],
    xlim: tuple[float, float],
    ymax: float,
) -> None:
    """Write "owner · task" in the middle of each band's widest piece, cut to fit; nothing
    where even a few characters would not fit."""
    bbox = ax.get_window_extent()
    px_per_x = bbox.width / (xlim[1] - xlim[0])
    px_per_gb = bbox.height / ymax
    for band in bands:
        piece = band.widest
        left, right = x[piece.start], x[piece.end]
        high = (piece.top_mib - piece.bottom_mib) / MIB_PER_GB
        fits = int((right - left) * px_per_x / CHAR_PX) - 1
        if high * px_per_gb < LINE_PX or fits < 4:
            continue
        b = band.booking
        text = f"{names.get(b.user_id, b.user_id)} · {b.task}"
        if len(text) > fits:
            text = text[: fits - 1] + "…"
        middle = (piece.bottom_mib + piece.top_mib) / 2 / MIB_PER_GB
        ax.text(
            (left + right) / 2,
            middle,
            text,
            ha="center",
            va="center",
            fontsize=LABEL_POINTS,
            clip_on=True,
        )


def _time_axis(ax: Any, cal: CalendarData, tz: tzinfo, week: bool, dates: Any) -> None:
    """A week: each local midnight. A day: every two hours *elapsed* from its midnight, labelled
    in the viewer's zone — on a DST day the labels skip or repeat an hour rather than crowd or
    space unevenly, since the axis is real time."""
    if week:
        ax.xaxis.set_major_locator(dates.DayLocator(tz=tz))
        ax.xaxis.set_major_formatter(dates.DateFormatter("%a %d", tz=tz))
        ax.xaxis.set_minor_locator(dates.HourLocator(byhour=(6, 12, 18), tz=tz))
        return
    hours = int((cal.end - cal.start) / timedelta(hours=1))
    ticks = [cal.start + timedelta(hours=h) for h in range(hours + 1)]
    ax.set_xticks(dates.date2num(ticks[::2]))
    ax.set_xticks(dates.date2num(ticks), minor=True)
    ax.xaxis.set_major_formatter(dates.DateFormatter("%H:%M", tz=tz))


def _when(cal: CalendarData, tz: tzinfo, week: bool) -> str:
    first = cal.start.astimezone(tz)
    day = f"{first:%a} {first.day} {first:%b %Y}"
    return f"week of {day}" if week else day
