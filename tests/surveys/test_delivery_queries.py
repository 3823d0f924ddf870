"""Delivering a chunk costs a fixed number of queries, whatever its size."""

import pytest

from surveys import services
from surveys.models import Invitation

from .test_delivery import queued_poll

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("size", [3, 40])
def test_chunk_delivery_queries_do_not_grow(smtp_sink, django_assert_max_num_queries, size):
    ids = [inv.pk for inv in queued_poll(size)]
    # claim + read claimed, invitations, teams, primary contacts, token hashes, mark sent,
    # and once per poll its targets (to list the targeted teams)
    with django_assert_max_num_queries(13):
        assert services.invitations_deliver(invitation_ids=ids) == []
    assert Invitation.objects.filter(state=Invitation.State.SENT).count() == size
    assert len(smtp_sink.messages) == size
