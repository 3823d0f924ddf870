from django.apps import AppConfig


class ReadinessConfig(AppConfig):
    name = "readiness"
    verbose_name = "Readiness: accounts and dashboards"

    def ready(self):
        from . import signals  # noqa: F401 (connects the audit receivers)
