"""The dashboards' template filters (durations, arrival windows). Dashboards layer: only the
dashboards' templates load them."""

from django import template

from readiness.dashboards.figures import CURVE_END, duration_label

register = template.Library()


@register.filter
def minutes(value) -> str:
    """Minutes as '45 min', '2 h', '4 h 30 min'; empty for none."""
    if value is None or value == "":
        return "—"
    return duration_label(int(value))


@register.filter
def met_at(value) -> str:
    """When a need is met: a time on the curve, 'after 8 h', or 'not met'."""
    if value is None:
        return "not met"
    if value > CURVE_END:
        return f"after {duration_label(CURVE_END)}"
    return f"by {duration_label(value)}"


@register.filter
def percent(value) -> str:
    return f"{round((value or 0) * 100)}%"
