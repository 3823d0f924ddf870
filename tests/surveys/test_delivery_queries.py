"""Delivering a chunk costs a fixed number of queries plus one per email: the moment the server
accepts a message, one statement marks it sent (so a killed worker re-sends at most the message
in flight) and begins the next (its attempt counted and the claim checked, so a worker that lost
its claim sends nothing)."""

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
    # qualifications, what is left, the first email's start; and one per email
    with django_assert_max_num_queries(17 + size):
        assert delivery.invitations_deliver(invitation_ids=ids).pending == []
    assert Invitation.objects.filter(state=Invitation.State.SENT).count() == size
    assert len(smtp_sink.messages) == size


def test_the_next_email_is_not_sent_once_its_claim_is_lost(smtp_sink, monkeypatch):
    """The statement that marks one email sent begins the next only if the claim still holds
    it: taken meanwhile (a sweep gave it to another worker), it is left to that worker."""
    ids = [inv.pk for inv in queued_poll(3)]
    taken = ids[1]
    sent = delivery._Chunk.sent

    def another_worker_takes_the_second(chunk, pk, *args, **kwargs):
        if pk == ids[0]:
            Invitation.objects.filter(pk=taken).update(claim="another", claimed_by="celery@b t2")
        return sent(chunk, pk, *args, **kwargs)

    monkeypatch.setattr(delivery._Chunk, "sent", another_worker_takes_the_second)
    delivery.invitations_deliver(invitation_ids=ids)
    assert len(smtp_sink.messages) == 2
    rows = {pk: (state, attempts, claim) for pk, state, attempts, claim in
            Invitation.objects.values_list("pk", "state", "attempts", "claim")}  # fmt: skip
    assert rows[ids[0]] == rows[ids[2]] == (Invitation.State.SENT, 1, "")
    assert rows[taken] == (Invitation.State.SENDING, 0, "another")  # untouched, not counted
