import datetime
import secrets

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from agencies.models import Contact
from readiness.models import User
from surveys.models import Invitation, Poll

from ..factories import AgencyFactory, ContactFactory, UserFactory


class PollFactory(DjangoModelFactory):
    """A draft planning survey for Chicago; pass target agencies after creation."""

    class Meta:
        model = Poll
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Availability check {n}")
    purpose = Poll.Purpose.PLANNING
    message = "Which of your teams could deploy, and how soon?"
    destination_name = "Chicago"
    destination_latitude = 41.8837
    destination_longitude = -87.6319
    deadline = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=2))
    created_by = factory.SubFactory(UserFactory, role=User.Role.COORDINATOR)

    @factory.post_generation
    def target_agencies(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.target_agencies.set(extracted)


def open_invitation(
    *, agency=None, poll=None, travel_minutes: int = 60, **poll_kwargs
) -> tuple[Invitation, str]:
    """A delivered invitation of an open poll, and the secret token of its reply link."""
    agency = agency or AgencyFactory()
    contact = agency.contacts.filter(role=Contact.Role.PRIMARY).first() or ContactFactory(
        agency=agency, role=Contact.Role.PRIMARY
    )
    if poll is None:
        poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now(), **poll_kwargs)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        poll=poll, agency=agency, contact=contact, email=contact.email,
        token_hash=Invitation.hash_token(token), distance_km=round(travel_minutes * 1.2, 1),
        travel_minutes=travel_minutes, state=Invitation.State.SENT, sent_at=timezone.now(),
    )  # fmt: skip
    return invitation, token


def post_request(user):
    """A POST request by `user`, for calling a service as a page would."""
    from django.test import RequestFactory

    request = RequestFactory().post("/")
    request.user = user
    return request
