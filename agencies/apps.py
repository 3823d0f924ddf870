from django.apps import AppConfig


class AgenciesConfig(AppConfig):
    name = "agencies"
    verbose_name = "Agency registry"

    def ready(self):
        # Register the beat's tasks in every process, like surveys does.
        from . import tasks  # noqa: F401
