from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = "Availability polls"

    def ready(self):
        # The flows queue tasks by name (surveys.jobs): register them in every process, the web
        # processes included, not only where a worker has imported them.
        from . import tasks  # noqa: F401
