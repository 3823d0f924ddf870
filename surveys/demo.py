"""A demo poll for `load_demo`: open, sent six hours ago to the SWAT and MFF teams within 100 km
of Chicago, with answers from about half of the agencies asked (synthetic, deterministic).

The demo commander's agency is asked but left unanswered, for them to answer. No email is sent:
the invitations are recorded as delivered, without working links.
"""

import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agencies.models import Agency, TeamType

from . import replies, selectors
from .geo import travel_minutes
from .models import Invitation, Poll, Reply

DEMO_TITLE = "Demo: critical situations in Chicago"
DECLINES = [
    "Officers committed to a local festival this weekend.",
    "Team is at minimum staffing after retirements.",
    "Our council has not approved mutual aid outside the county.",
]


@transaction.atomic
def load_demo_poll(*, coordinator, keep_unanswered: Agency) -> tuple[Poll, int, int] | None:
    """Create the demo poll once; returns (poll, asked, answered), or None if it exists."""
    if Poll.objects.filter(title=DEMO_TITLE).exists():
        return None
    now = timezone.now()
    name, lat, lon = settings.POLL_DESTINATIONS[0]
    poll = Poll.objects.create(
        title=DEMO_TITLE,
        purpose=Poll.Purpose.PLANNING,
        message=(
            "For emergency situations, not routine calls for service: would members of your "
            "special teams be willing to respond to critical situations in Chicago, and how "
            "quickly could they get there?"
        ),
        situation=Poll.Situation.EMERGENCY,
        destination_name=name,
        destination_latitude=lat,
        destination_longitude=lon,
        target_radius_km=100,
        officers_needed=400,
        requirements=["Current state SWAT or MFF certification"],
        deadline=now + timedelta(days=2),
        reminder_hours_before=[24, 4],
        escalate_after_hours=24,
        state=Poll.State.OPEN,
        sent_at=now - timedelta(hours=6),
        created_by=coordinator,
    )
    poll.target_team_types.set(TeamType.objects.filter(code__in=["swat", "mff"]))
    poll.target_agencies.add(keep_unanswered)
    agencies = [a for a in selectors.poll_recipients(poll=poll) if a.primary_contacts]
    Invitation.objects.bulk_create(
        Invitation(
            poll=poll, agency=a, contact=a.primary_contacts[0], email=a.primary_contacts[0].email,
            distance_km=round(a.distance_km, 1), travel_minutes=travel_minutes(a.distance_km),
            state=Invitation.State.SENT, sent_at=poll.sent_at,
        )
        for a in agencies
    )  # fmt: skip
    rng = random.Random(2026)  # noqa: S311 (synthetic demo figures, not secrets)
    answered = 0
    for invitation in poll.invitations.select_related("agency", "contact").order_by("pk"):
        if invitation.agency_id == keep_unanswered.pk or rng.random() < 0.45:
            continue
        teams = list(
            invitation.agency.teams.filter(active=True, team_type__code__in=["swat", "mff"])
        )
        roll = rng.random()
        if roll < 0.15 or not teams:
            decision = Reply.Decision.UNAVAILABLE
        elif roll < 0.4:
            decision = Reply.Decision.CONDITIONAL
        else:
            decision = Reply.Decision.AVAILABLE
        answer = {
            "decision": decision,
            "authorised_by_name": invitation.contact.name,
            "authorised_by_rank": invitation.contact.title or "Chief",
            "conditions": [Reply.Condition.EMERGENCIES_ONLY, Reply.Condition.OWN_AUTHORITY]
            if decision == Reply.Decision.CONDITIONAL
            else [],
            "decline_reason": rng.choice(DECLINES)
            if decision == Reply.Decision.UNAVAILABLE
            else "",
        }
        lines = []
        if decision != Reply.Decision.UNAVAILABLE:
            for team in teams:
                officers = max(1, round(team.members * rng.uniform(0.3, 0.8)))
                travel = max(5, round(invitation.travel_minutes * rng.uniform(0.8, 1.3)))
                lines.append({
                    "team": team, "estimate": invitation.travel_minutes, "officers": officers,
                    "vehicles": max(1, officers // 4),
                    "depart_minutes": rng.choice([15, 20, 30, 45, 60, 90]),
                    "travel_minutes": travel,
                    "deploy_hours": rng.choice([8, 12, 24, 48]),
                    "officers_qualified": round(officers * rng.uniform(0.6, 1)),
                })  # fmt: skip
        replies.reply_submit(
            poll=poll, agency=invitation.agency, answer=answer, lines=lines, base_version=0,
            invitation=invitation, confirm=False,
            now=poll.sent_at + timedelta(minutes=rng.randint(5, 350)),
        )  # fmt: skip
        answered += 1
    return poll, len(agencies), answered
