"""readiness.broker: Celery's Redis transport with one publishing client per pool, and what the
flows' tasks show of their arguments (surveys.jobs)."""

import base64
import json
import uuid

import pytest
import redis
from django.db import transaction
from kombu import Connection, Exchange, Producer, Queue

from readiness.celery import app as celery_app
from surveys import jobs


@pytest.mark.services
def test_publishing_shares_one_client_per_pool(redis_url):
    name = f"test-broker-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name), routing_key=name)
    server = redis.Redis.from_url(redis_url)
    try:
        with Connection(redis_url, transport="readiness.broker:Transport") as connection:
            channel = connection.default_channel
            producer = Producer(channel)
            for n in range(3):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key=name,
                                 declare=[queue], serializer="json")  # fmt: skip
            pool, client = channel._publisher
            assert pool is channel.pool
            producer.publish({"n": 3}, exchange=queue.exchange, routing_key=name)
            assert channel._publisher[1] is client  # the same client for every message

            channel._pool = None  # as after a lost connection: a new pool, a client of its own
            producer.publish({"n": 4}, exchange=queue.exchange, routing_key=name)
            assert channel._publisher[1] is not client
            assert channel._publisher[0] is channel.pool

            got = [queue(channel).get(no_ack=True).payload for _ in range(5)]
        assert got == [{"n": n} for n in range(5)]  # delivered in order, none lost
    finally:
        server.delete(name)


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_a_queued_task_shows_its_arguments_with_links_masked(redis_url, settings):
    name = f"test-jobs-{uuid.uuid4().hex[:8]}"
    server = redis.Redis.from_url(redis_url)
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, name
    link = "https://readiness.example/r/Zx8secret-token_value/"
    try:
        with transaction.atomic():
            jobs.after_commit("surveys.tasks.send_reply_confirmation", 41, link)
            assert server.llen(name) == 0  # nothing before the commit
        raw = server.rpop(name)
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        server.delete(name)
    message = json.loads(raw)
    headers = message["headers"]
    assert headers["task"] == "surveys.tasks.send_reply_confirmation"
    assert headers["argsrepr"] == "(41, 'https://readiness.example/r/[hidden]/')"
    assert headers["kwargsrepr"] == "{}"
    assert "Zx8secret" not in json.dumps(headers)
    # The worker still gets the link itself: in the message's body, which no log shows.
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([41, link], {})


@pytest.mark.django_db(transaction=True)
def test_a_task_that_cannot_be_queued_fails_its_caller_unless_robust(monkeypatch, caplog):
    """A beat run that claims its work row by row stops at the first task the broker refuses
    (the rest stay unclaimed for the next run); only `robust` work is logged and let go."""
    from kombu.exceptions import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery_app.tasks["surveys.tasks.send_reply_confirmation"],
                        "apply_async", down)  # fmt: skip
    celery_app.conf.task_always_eager = False  # through the broker (conftest restores it)
    with pytest.raises(OperationalError), transaction.atomic():
        jobs.after_commit("surveys.tasks.send_reply_confirmation", 1, "")
    with transaction.atomic():
        jobs.after_commit("surveys.tasks.send_reply_confirmation", 1, "", robust=True)
    assert "Connection refused" in caplog.text
