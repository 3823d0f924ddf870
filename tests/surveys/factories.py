import datetime

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from readiness.models import User
from surveys.models import Poll

from ..factories import UserFactory


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
