"""The dashboards' template filters (durations, arrival windows) and the answers table's cells.
Dashboards layer: only the dashboards' templates load them."""

from django import template
from django.template.defaultfilters import truncatechars

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


# The answers table's cells that show twice (in the cell and in its title, for a wall screen's
# one-line rows): built once per cell in Python, a row of the table being fifty template nodes
# otherwise. Plain text; the template escapes it.


@register.simple_tag(takes_context=True)
def team_line(context, line) -> str:
    """'SWAT T2: 12, arrives 1 h 15 min', marked when after the dashboard's window: the team's
    type and level as the answer counted them (the line's copies)."""
    level = line.team_level
    text = f"{line.team_type.name}{f' T{level}' if level else ''}: {line.officers}"
    if line.officers:
        text += f", arrives {minutes(line.arrival_minutes)}"
        within, arrival = context.get("within"), line.arrival_minutes
        if within is not None and arrival is not None and arrival > within:
            text += f" (after {context.get('within_label')})"
    return text


@register.simple_tag
def conditions_text(reply) -> str:
    """The conditions in full: the ones ticked, then their own words; or why they declined."""
    parts = []
    if reply.conditions:
        parts.append("; ".join(reply.condition_labels()))
    if reply.conditions_text:
        parts.append(f"“{reply.conditions_text}”")
    text = "; ".join(parts)
    if reply.decision == "unavailable":
        text += f"Declined: {truncatechars(reply.decline_reason, 300)}"
    return text


@register.simple_tag(takes_context=True)
def changed_by(context, reply) -> str:
    """Who last changed an answer and how: the user, the link's address (for those who may see
    contacts) or the kind of link, then ' · by text' or ' · API'."""
    show_contacts = context.get("show_contacts")
    via, channel = reply.updated_via, getattr(reply, "channel", "")
    if reply.updated_by:
        text = reply.updated_by.get_full_name()
    elif via and show_contacts:
        text = via.email or via.mobile
    elif via:
        text = "text" if channel == "sms" else "emailed link"
    else:
        text = ""
    if channel == "sms" and (reply.updated_by or show_contacts):
        text += " · by text"
    elif channel == "api":
        text += " · API"
    return text
