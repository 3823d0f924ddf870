"""The Celery app. Redis is the broker when REDIS_URL is set; otherwise tasks run eagerly."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")

# DjangoTask adds delay_on_commit/apply_async_on_commit, so work is queued only after the
# transaction that created it commits.
app = Celery("readiness", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
