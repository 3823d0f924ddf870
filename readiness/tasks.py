from celery import shared_task
from django.db import connection


@shared_task(ignore_result=False)  # its result is the answer
def health_check() -> dict:
    """Round trip through the broker and a worker to the database; used by checks and tests."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {"worker": "ok", "database": one == 1, "vendor": connection.vendor}
