"""Geometry for the dashboards' server-rendered SVG charts.

The figures come summed from the database (readiness.dashboards.figures); this only turns a
few dozen points into coordinates, ticks and labels for the templates. Series differ in line
pattern and marker shape as well as colour, and each chart has a table of its figures beside it.
"""

import math

from .figures import CURVE_END, Summary, duration_label

WIDTH, HEIGHT = 640, 280  # the half-width charts; the arrival curve is wider
LEFT, RIGHT, TOP, BOTTOM = 52, 170, 16, 40
PLOT_H = HEIGHT - TOP - BOTTOM
LATER_AT = CURVE_END + 45  # where "later" sits on the time axis
TIME_TICKS = (15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)  # minutes between time ticks


def nice_ceiling(value: float) -> int:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above value (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= value:
            return math.ceil(factor * magnitude)
    return int(10 * magnitude)


def _y(value: float, top: float) -> float:
    return round(TOP + PLOT_H * (1 - value / top), 1)


def _y_ticks(top: int, count: int = 4) -> list[dict]:
    return [{"y": _y(top * i / count, top), "label": f"{round(top * i / count):,}"}
            for i in range(count + 1)]  # fmt: skip


def _points(pairs: list[tuple[float, float]]) -> str:
    return " ".join(f"{x},{y}" for x, y in pairs)


def _end_labels(series: list[dict]) -> None:
    """Label each line at its right end, nudged apart so labels never overlap."""
    ordered = sorted(series, key=lambda s: s["end_y"])
    previous = None
    for s in ordered:
        y = s["end_y"]
        if previous is not None and y - previous < 15:
            y = previous + 15
        s["label_y"] = round(y + 4, 1)
        previous = y


def arrival_chart(summary: Summary, width: int = 960) -> dict:
    """The arrival curve: officers able to arrive by each time, two series, the need, and the
    window of the 'within' control."""
    plot_w = width - LEFT - RIGHT
    curve = summary.curve
    need = summary.need.officers if summary.need else 0
    top = nice_ceiling(max(curve[-1].everyone, need, 1) * 1.05)

    def x(minutes: int | None) -> float:
        return round(LEFT + plot_w * (LATER_AT if minutes is None else minutes) / LATER_AT, 1)

    series = []
    keys = [
        ("available", "Available", "s-available", "circle"),
        ("everyone", "Incl. conditional", "s-conditional", "square"),
    ]
    if summary.officers_backed:  # where commanders rolled up their members' own answers
        keys.append(("members", "Members' own times", "s-members", "diamond"))
    for key, label, css, marker in keys:
        pairs = [(x(p.minutes), _y(getattr(p, key), top)) for p in curve]
        series.append({
            "key": key, "label": label, "css": css, "marker": marker,
            "points": _points(pairs[:-1]), "later": _points(pairs[-2:]),
            "markers": [{"x": px, "y": py} for px, py in pairs[::4]],
            "end_y": pairs[-1][1], "value": getattr(curve[-1], key),
        })  # fmt: skip
    _end_labels(series)
    window = None
    if summary.within is not None:
        wx = x(min(summary.within, LATER_AT))
        window = {"x": wx, "width": round(LEFT + plot_w - wx, 1),
                  "label": f"within {duration_label(summary.within)}"}  # fmt: skip
    return {
        "width": width, "height": HEIGHT, "left": LEFT, "top": TOP, "right": LEFT + plot_w,
        "bottom": TOP + PLOT_H, "label_x": LEFT + plot_w + 8,
        "series": series, "y_ticks": _y_ticks(top),
        "x_ticks": [{"x": x(h * 60), "label": f"{h} h"} for h in range(0, 9)]
        + [{"x": x(None), "label": "later"}],
        "need": {"y": _y(need, top), "label": f"Need {need:,}"} if need else None,
        "window": window,
    }  # fmt: skip


def progress_chart(summary: Summary, width: int = WIDTH) -> dict | None:
    """Reply progress: the share of asked agencies that have answered, since sending."""
    plot_w = width - LEFT - RIGHT
    progress = summary.progress
    if not progress:
        return None
    span = max(progress[-1]["minutes"], 1)

    def x(minutes: float) -> float:
        return round(LEFT + plot_w * minutes / span, 1)

    pairs = [(x(p["minutes"]), _y(p["share"] * 100, 100)) for p in progress]
    tick = next((t for t in TIME_TICKS if span / t <= 6), TIME_TICKS[-1])
    ticks = [{"x": x(m), "label": duration_label(m)} for m in range(0, int(span) + 1, tick)]
    area = _points([(pairs[0][0], TOP + PLOT_H), *pairs, (pairs[-1][0], TOP + PLOT_H)])
    last = progress[-1]
    return {
        "width": width, "height": HEIGHT, "left": LEFT, "top": TOP, "right": LEFT + plot_w,
        "bottom": TOP + PLOT_H, "label_x": LEFT + plot_w + 8,
        "points": _points(pairs), "area": area, "end_y": round(pairs[-1][1] + 4, 1),
        "end_label": f"{round(last['share'] * 100)}% ({last['answered']} of {summary.asked})",
        "y_ticks": [{"y": _y(v, 100), "label": f"{v}%"} for v in (0, 25, 50, 75, 100)],
        "x_ticks": ticks,
    }  # fmt: skip


def bar_widths(rows: list[dict], keys: tuple[str, str], width: int = 140) -> None:
    """Add `bars` (pixel widths of two stacked bars) to breakdown rows, scaled to the largest."""
    largest = max((row[keys[0]] + row[keys[1]] for row in rows), default=0) or 1
    for row in rows:
        first = round(width * row[keys[0]] / largest, 1)
        second = round(width * row[keys[1]] / largest, 1)
        row["bars"] = {"first": first, "second": second, "second_x": first, "width": width}
