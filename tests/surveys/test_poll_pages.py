"""Composing, previewing, sending and watching a poll through the web pages."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact
from readiness.models import AuditEvent
from surveys.models import Invitation, Poll
from tests.factories import AgencyFactory, ContactFactory, RegionFactory

NEW = reverse("surveys:poll-create")
CONFIRMED = {"confirm": "yes"}  # what the confirmation step (dialog or page) sends


def form_data(**changes) -> dict:
    deadline = timezone.localtime() + timedelta(days=1)
    data = {
        "title": "Critical situations in Chicago",
        "purpose": "planning",
        "situation": "emergency",
        "message": "Would members of your special teams respond?",
        "destination": "0",  # the first preset: Chicago
        "deadline": deadline.strftime("%Y-%m-%dT%H:%M"),
        "reminders": "24, 4",
        "target_kinds": ["municipal"],
    }
    data.update(changes)
    return data


@pytest.fixture
def north(db):
    region = RegionFactory(name="North")
    for i, lat in enumerate((41.9, 42.0, 42.1)):
        agency = AgencyFactory(name=f"North {i} PD", region=region, latitude=lat, longitude=-87.7)
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY, email=f"chief{i}@north.example")
    AgencyFactory(name="No Contact PD", region=region)
    return region


def test_compose_preview_send_and_watch(
    client, coordinator, north, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(coordinator)
    page = client.get(NEW)
    assert "For emergency situations, not routine calls for service" in page.text  # template
    response = client.post(NEW, form_data(target_regions=[north.pk]))
    assert response.status_code == 302
    poll = Poll.objects.get()
    assert (poll.state, poll.destination_name) == ("draft", "Chicago (City Hall)")
    assert poll.reminder_hours_before == [24, 4]
    preview = client.get(response["Location"])
    assert preview.context["recipients"] and len(preview.context["recipients"]) == 4
    assert "No Contact PD" in preview.context["unreachable"][0].name
    assert "no usable contact" in preview.text
    assert "Planning survey" in preview.text

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    assert sent.status_code == 302
    assert len(mailoutbox) == 3
    assert sorted(m.to[0] for m in mailoutbox) == [f"chief{i}@north.example" for i in range(3)]
    page = client.get(reverse("surveys:poll-detail", args=[poll.pk]))
    assert page.context["counts"]["sent"] == 3 and page.context["counts"]["done"]
    assert "all sent" in page.text
    # The live part on its own, for htmx.
    partial = client.get(reverse("surveys:poll-detail", args=[poll.pk]), HTTP_HX_REQUEST="true")
    assert partial.text.lstrip().startswith('<section id="progress"')
    assert "hx-trigger" not in partial.text  # done: it stops polling
    # Pressing send again sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    assert len(mailoutbox) == 3 and Invitation.objects.count() == 3
    assert {"poll.create", "poll.send"} <= set(AuditEvent.objects.values_list("action", flat=True))


def test_sending_asks_first_and_sends_nothing_until_confirmed(
    client, coordinator, north, django_capture_on_commit_callbacks, mailoutbox
):
    client.force_login(coordinator)
    client.post(NEW, form_data(target_regions=[north.pk]))
    poll = Poll.objects.get()
    detail = client.get(reverse("surveys:poll-detail", args=[poll.pk])).text
    assert 'data-confirm="Send “Critical situations in Chicago” to 3 agencies now?' in detail
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(reverse("surveys:poll-send", args=[poll.pk]))
    assert asked.status_code == 200 and "Send to 3 agencies?" in asked.text
    assert "Send to 3 agencies now" in asked.text and "Back, do nothing" in asked.text
    assert Poll.objects.get().state == Poll.State.DRAFT and not Invitation.objects.exists()
    assert mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    assert sent.status_code == 302 and Poll.objects.get().state == Poll.State.OPEN
    assert len(mailoutbox) == 3


def test_progress_keeps_polling_while_invitations_wait(
    client, coordinator, north, django_capture_on_commit_callbacks
):
    client.force_login(coordinator)
    client.post(NEW, form_data(target_regions=[north.pk]))
    poll = Poll.objects.get()
    with django_capture_on_commit_callbacks(execute=False):  # delivery not run yet
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    page = client.get(reverse("surveys:poll-detail", args=[poll.pk]))
    assert page.context["counts"]["queued"] == 3
    assert 'hx-trigger="every 2s"' in page.text


def test_the_poll_page_shows_stuck_invitations_and_retry_times(
    client, coordinator, north, django_capture_on_commit_callbacks, clock
):
    client.force_login(coordinator)
    client.post(NEW, form_data(target_regions=[north.pk]))
    poll = Poll.objects.get()
    with django_capture_on_commit_callbacks(execute=False):  # delivery not run yet
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    dead, retrying, fresh = Invitation.objects.filter(poll=poll).order_by("pk")
    now = timezone.now()
    Invitation.objects.filter(pk=dead.pk).update(
        state="sending", claimed_by="celery@gone t1", claimed_at=now - timedelta(minutes=3)
    )
    Invitation.objects.filter(pk=retrying.pk).update(
        attempts=2, next_attempt_at=now + timedelta(minutes=1), failure_reason="451 greylisted"
    )
    page = client.get(reverse("surveys:poll-detail", args=[poll.pk]))
    assert page.context["counts"]["stuck"] == 1
    assert "1 invitation stuck" in page.text and "Celery workers and beat" in page.text
    assert page.text.count("⚑ stuck") == 1
    assert "attempt 3 of 6 at" in page.text and "451 greylisted" in page.text
    # Two minutes later the retry time has long passed too: both are stuck.
    clock.shift(timedelta(minutes=4))
    assert (
        client.get(reverse("surveys:poll-detail", args=[poll.pk])).context["counts"]["stuck"] == 2
    )
    assert fresh.state == "queued"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"purpose": "request"}, "requesting_agency", "Say which agency requests assistance"),
        ({"purpose": "request"}, "requesting_person", "Say who requests assistance"),
        ({"deadline": "2001-01-01T00:00"}, "deadline", "must be in the future"),
        ({"destination": "custom"}, "destination_latitude", "name and coordinates"),
        ({"reminders": "soon"}, "reminders", "whole hours"),
        ({"target_kinds": []}, None, "Choose whom to ask"),
    ],
)
def test_compose_errors_are_explained_and_nothing_saved(
    client, coordinator, changes, field, message
):
    client.force_login(coordinator)
    response = client.post(NEW, form_data(**changes))
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert message in str(errors[field] if field else errors["__all__"])
    assert not Poll.objects.exists()


def test_request_for_assistance_names_who_asked_everywhere(
    client, coordinator, north, mailoutbox, django_capture_on_commit_callbacks
):
    requester = AgencyFactory(name="Chicago Police Department")
    client.force_login(coordinator)
    client.post(
        NEW,
        form_data(
            purpose="request",
            requesting_agency=requester.pk,
            requesting_person="Supt. Example",
            target_regions=[north.pk],
        ),
    )
    poll = Poll.objects.get()
    page = client.get(reverse("surveys:poll-detail", args=[poll.pk])).text
    assert "Request for assistance" in page and "Supt. Example" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    body = mailoutbox[0].body
    assert body.startswith("REQUEST FOR ASSISTANCE: requested by Supt. Example, Chicago Police")


def test_only_drafts_can_be_edited(client, coordinator, north, django_capture_on_commit_callbacks):
    client.force_login(coordinator)
    client.post(NEW, form_data(target_regions=[north.pk]))
    poll = Poll.objects.get()
    edit = reverse("surveys:poll-edit", args=[poll.pk])
    assert (
        client.post(edit, form_data(title="Renamed", target_regions=[north.pk])).status_code == 302
    )
    poll.refresh_from_db()
    assert poll.title == "Renamed"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    response = client.post(edit, form_data(title="Too late", target_regions=[north.pk]))
    assert response.status_code == 302
    poll.refresh_from_db()
    assert poll.title == "Renamed"


def test_officials_watch_but_do_not_send(client, official, coordinator, north):
    client.force_login(coordinator)
    client.post(NEW, form_data(target_regions=[north.pk], title="<b>Bold</b>"))
    poll = Poll.objects.get()
    client.force_login(official)
    page = client.get(reverse("surveys:poll-detail", args=[poll.pk]))
    assert page.status_code == 200
    assert "&lt;b&gt;Bold&lt;/b&gt;" in page.text  # escaped
    assert "Send to" not in page.text
    assert client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED).status_code == 403
    assert Poll.objects.get().state == "draft"
    listing = client.get(reverse("surveys:poll-list"))
    assert "New poll" not in listing.text and "&lt;b&gt;Bold" in listing.text


def test_live_preview_from_the_form_as_it_stands(client, coordinator, north):
    client.force_login(coordinator)
    preview = reverse("surveys:poll-preview")
    response = client.post(preview, form_data(target_regions=[north.pk], title=""))
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="preview"')
    assert len(response.context["recipients"]) == 4 and response.context["reachable"] == 3
    assert "No Contact PD" in response.text and "no usable contact" in response.text
    assert not Poll.objects.exists()  # nothing saved
    narrowed = client.post(preview, form_data(target_regions=[north.pk], target_radius_km="25"))
    assert len(narrowed.context["recipients"]) < 4
    no_place = client.post(preview, form_data(destination="custom", target_regions=[north.pk]))
    assert "Choose a destination" in no_place.text


def test_the_distance_before_and_after_sending_is_the_same(
    client, coordinator, django_capture_on_commit_callbacks
):
    """25.46 km from City Hall: stored as 25.5, shown as 26 km before and after sending (it
    was 25 in the preview and 26 on the poll page)."""
    import math

    from surveys.geo import EARTH_RADIUS_KM

    region = RegionFactory(name="South")
    lat = 41.8837 - 25.46 / (EARTH_RADIUS_KM * math.pi / 180)  # due south of City Hall
    agency = AgencyFactory(name="Blue Island PD", region=region, latitude=lat, longitude=-87.6319)
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    client.force_login(coordinator)
    preview = client.post(reverse("surveys:poll-preview"), form_data(target_regions=[region.pk]))
    assert '<td data-label="Distance" class="num">26 km</td>' in preview.text
    client.post(NEW, form_data(target_regions=[region.pk]))
    poll = Poll.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    page = client.get(reverse("surveys:poll-detail", args=[poll.pk])).text
    assert '<td data-label="Distance" class="num">26 km</td>' in page
    assert Invitation.objects.get().distance_km == 25.5


def test_likely_mistakes_are_named_before_sending(client, coordinator, north):
    """Reminders already past, the requester among the recipients, answers due after the need,
    and an agency listed with 0 officers because it only contributes to another's team."""
    from tests.factories import SpecialTeamFactory, TeamMembershipFactory, TeamTypeFactory

    swat = TeamTypeFactory(code="swat")
    host, member = (AgencyFactory(name=n, region=north) for n in ("Host PD", "Member PD"))
    for agency in (host, member):
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    team = SpecialTeamFactory(agency=host, team_type=swat, members=20)
    TeamMembershipFactory(team=team, agency=member, officers=5)
    soon = timezone.localtime() + timedelta(hours=6)
    data = form_data(
        target_regions=[north.pk], target_team_types=[swat.pk], reminders="24, 4",
        deadline=soon.strftime("%Y-%m-%dT%H:%M"), purpose="request",
        requesting_agency=host.pk, requesting_person="Chief Host",
        officers_needed="20", needed_by=(soon - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    )  # fmt: skip
    client.force_login(coordinator)
    preview = client.post(reverse("surveys:poll-preview"), data).text
    assert "Check before sending:" in preview
    assert "The 24-hour reminder would fall before now" in preview
    assert "Host PD requested the assistance and is among the recipients" in preview
    assert "Answers are due" in preview and "after the officers are needed" in preview
    assert "1 agency is listed with 0 officers (Member PD)" in preview
    client.post(NEW, data)
    draft = client.get(reverse("surveys:poll-detail", args=[Poll.objects.get().pk])).text
    assert "Check before sending:" in draft and "Host PD requested the assistance" in draft
    # A sensible poll: no warning at all.
    later = (timezone.localtime() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    fine = client.post(
        reverse("surveys:poll-preview"), form_data(target_regions=[north.pk], deadline=later)
    )
    assert "Check before sending" not in fine.text


def test_an_untouched_compose_form_raises_no_check(client, coordinator, north):
    """The form's defaults agree with each other: its deadline leaves room for its reminders."""
    client.force_login(coordinator)
    form = client.get(NEW).context["form"]
    data = {name: form[name].value() for name in ("purpose", "situation", "message", "reminders")}
    # The form shows its deadline in local time; the coordinator names a destination.
    data.update(title="Untouched", target_regions=[north.pk], destination="0",
                deadline=form["deadline"].value().strftime("%Y-%m-%dT%H:%M"))  # fmt: skip
    preview = client.post(reverse("surveys:poll-preview"), data)
    assert preview.status_code == 200 and "4 agencies" in preview.text
    assert "Check before sending" not in preview.text


def test_email_lists_the_agency_teams_the_poll_targets(
    client, coordinator, mailoutbox, django_capture_on_commit_callbacks
):
    from tests.factories import SpecialTeamFactory, TeamTypeFactory

    swat, k9 = TeamTypeFactory(code="swat"), TeamTypeFactory(code="k9")
    agency = AgencyFactory(name="Teams PD")
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    SpecialTeamFactory(agency=agency, team_type=swat, name="Teams SRT")
    SpecialTeamFactory(agency=agency, team_type=k9, level=1, members=2, name="Teams K9")
    client.force_login(coordinator)
    client.post(NEW, form_data(target_kinds=[], target_team_types=[swat.pk]))
    poll = Poll.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    body = mailoutbox[0].body
    assert "Teams SRT" in body and "Teams K9" not in body


def test_poll_list_shows_delivery_and_answers(
    client, coordinator, north, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    client.force_login(coordinator)
    client.post(NEW, form_data(target_regions=[north.pk]))
    poll = Poll.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED)
    Invitation.objects.filter(pk=Invitation.objects.first().pk).update(replied_at=timezone.now())
    with django_assert_max_num_queries(8):
        listing = client.get(reverse("surveys:poll-list"))
    row = listing.context["polls"][0]
    assert (row.asked, row.sent, row.failed, row.answered, row.agencies) == (3, 3, 0, 1, 3)
    assert "1 of 3" in listing.text


def test_sending_is_refused_past_the_deadline_or_with_nobody_to_ask(client, coordinator, north):
    client.force_login(coordinator)
    client.post(NEW, form_data(target_regions=[north.pk]))
    poll = Poll.objects.get()
    Poll.objects.filter(pk=poll.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    page = client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED, follow=True)
    assert "The deadline has passed" in page.text
    Poll.objects.filter(pk=poll.pk).update(deadline=timezone.now() + timedelta(days=1))
    Contact.objects.update(active=False)
    page = client.post(reverse("surveys:poll-send", args=[poll.pk]), CONFIRMED, follow=True)
    assert "nobody would be asked" in page.text
    assert Poll.objects.get().state == Poll.State.DRAFT and not Invitation.objects.exists()


def test_the_preview_shows_each_ring_of_a_poll_in_waves(client, coordinator):
    region = RegionFactory(name="Rings")
    for name, lat in (("Near PD", 41.95), ("Mid PD", 42.6), ("Far PD", 43.4)):  # 7, 67, 141 min
        agency = AgencyFactory(name=name, region=region, latitude=lat, longitude=-87.63)
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    client.force_login(coordinator)
    data = form_data(target_regions=[region.pk], target_kinds=[], officers_needed="10",
                     waves="45, 90")  # fmt: skip
    import re

    preview = client.post(reverse("surveys:poll-preview"), data).text
    assert "In waves" in preview
    rows = re.findall(r'<th scope="row">(\d): ([^<]+)</th><td class="num">(\d+)</td>', preview)
    assert rows == [("1", "within 45 min of travel", "1"), ("2", "within 90 min of travel", "1"),
                    ("3", "the rest of the targeted agencies", "1")]  # fmt: skip
