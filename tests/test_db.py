"""readiness.db.joins_as_written: the planner keeps the written join order inside, and only
inside (a caller's transaction goes on planned as ever); nothing changes on SQLite."""

import pytest
from django.db import connection, transaction

from readiness.db import joins_as_written

pytestmark = pytest.mark.django_db


def limit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW join_collapse_limit")
        return cursor.fetchone()[0]


@pytest.mark.services
def test_inside_only_and_a_callers_transaction_gets_its_setting_back(postgres):
    default = limit()
    with joins_as_written():
        assert limit() == "1"
    assert limit() == default
    with transaction.atomic():
        with joins_as_written():
            assert limit() == "1"
        assert limit() == default  # the rest of the caller's transaction
    assert limit() == default


def test_elsewhere_the_queries_simply_run():
    from readiness.models import User

    with joins_as_written():
        assert User.objects.count() == 0
