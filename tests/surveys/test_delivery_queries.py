"""Delivering a chunk costs a fixed number of queries plus two per email: one just before it
goes (the attempt is counted and the claim checked, so a worker that lost its claim sends
nothing), one the moment the server accepts it (marked sent, so a killed worker re-sends at most
the message in flight)."""

import pytest

from surveys import delivery
from surveys.models import Invitation

from .test_delivery import queued_poll

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("size", [3, 40])
def test_chunk_delivery_queries_stay_bounded(smtp_sink, django_assert_max_num_queries, size):
    ids = [inv.pk for inv in queued_poll(size)]
    # claim + read claimed, the channels among them, invitations, teams, primary contacts, token
    # hashes and links, once per poll its targets (to list the targeted teams) and required
    # qualifications, what is left; and two per email
    with django_assert_max_num_queries(16 + 2 * size):
        assert delivery.invitations_deliver(invitation_ids=ids).pending == []
    assert Invitation.objects.filter(state=Invitation.State.SENT).count() == size
    assert len(smtp_sink.messages) == size
