from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from .load_demo import DEMO_TOTP_SECRET, demo_totp_code


class Command(BaseCommand):
    help = "Print the current two-factor code of the demo logins (development only)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("There are no demo logins in production.")
        self.stdout.write(
            f"{demo_totp_code()}  (secret {DEMO_TOTP_SECRET}; codes change every 30 s)"
        )
