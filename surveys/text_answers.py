"""An answer given in a few words (a text, an email reply; sms_grammar parses them) as the web
form's data, which the same forms check, and the answer as saved, said back in a line."""

from .models import Reply


def form_data(parsed, letters: dict, contact, reply, estimate: int) -> tuple[dict, str]:
    """The web form's fields for this answer, or a problem to tell the sender. Travel is what
    the team's line already says, or the estimate (a text gives departure, not travel)."""
    data = {
        "version": str(reply.version if reply else 0),
        "decision": parsed.decision,
        "authorised_by_name": contact.name,
        "authorised_by_rank": contact.title or "Agency contact",
    }
    if parsed.decision == "unavailable":
        data["decline_reason"] = parsed.text
        return data, ""
    if parsed.decision == "conditional":
        data["conditions"] = [Reply.Condition.OTHER]
        data["conditions_text"] = parsed.text
    if not letters:
        return data, "your agency has no team on record for this poll."
    by_letter = {}
    for line in parsed.lines:
        if not line.team and len(letters) > 1:
            listed = ", ".join(f"{k} = {t.name}" for k, t in letters.items())
            return data, f"say which team, e.g. Y A 8 30 B 4 45 ({listed})."
        team = letters.get(line.team or "A")
        if team is None:
            return data, f"there is no team {line.team} (teams: {', '.join(letters)})."
        by_letter[team.pk] = line
    travel = {line.team_id: line.travel_minutes for line in reply.lines.all()} if reply else {}
    for pk, line in by_letter.items():
        data[f"team-{pk}-officers"] = str(line.officers)
        data[f"team-{pk}-depart_minutes"] = str(line.depart_minutes)
        data[f"team-{pk}-travel_minutes"] = str(travel.get(pk) or estimate)
    return data, ""


def said_back(decision: str, lines: list[dict]) -> str:
    """An answer as saved, in a line for the sender, from the checked form data in hand (the
    web form's `line_data`: no query)."""
    if decision == Reply.Decision.UNAVAILABLE:
        return "UNAVAILABLE."
    parts = [
        f"{line['officers']} {line['team'].name}, leave in {line['depart_minutes']} min, arrive "
        f"in about {line['depart_minutes'] + line['travel_minutes']} min"
        for line in lines
        if line["officers"]
    ]
    word = "YES with conditions" if decision == Reply.Decision.CONDITIONAL else "YES"
    return f"{word}: {'; '.join(parts)}."
