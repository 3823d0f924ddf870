"""The whole demo: the registry (agencies.demo), demo logins, and a demo poll with answers
(surveys.demo). It lives in surveys, the app above the registry, so the registry never imports
the polls."""

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agencies import demo
from agencies.models import Agency, Contact
from readiness import permissions
from readiness.models import User
from surveys.demo import load_demo_poll

DEMO_PASSWORD = "readiness-demo"  # noqa: S105 (printed demo login; refused in production)
DEMO_COMMANDER_AGENCY = "aurora-police-department"
# Demo only: the two-factor secret of the demo logins whose role requires it (README explains
# how to get codes). Base32, as authenticator apps expect.
DEMO_TOTP_SECRET = "READINESSDEMOSECRETKEYFORMFA2345"  # noqa: S105
DEMO_USERS = (
    ("coordinator@readiness.example", "Casey Coordinator", User.Role.COORDINATOR),
    ("commander@readiness.example", "Chris Commander", User.Role.COMMANDER),
    ("official@readiness.example", "Olivia Official", User.Role.OFFICIAL),
)


class Command(BaseCommand):
    help = "Load the demo registry (Illinois agencies, synthetic teams and contacts) and logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--registry-only",
            action="store_true",
            help="load the demo agencies, teams and contacts but no logins (allowed in production)",
        )

    def handle(self, *args, registry_only, **options):
        if settings.PRODUCTION and not registry_only:
            raise CommandError(
                "Demo logins have a published password and two-factor secret: never in "
                "production. Use --registry-only for the demo registry alone."
            )
        result = demo.load_demo_registry()
        if not result.ok:
            for error in result.errors:
                self.stderr.write(str(error))
            raise CommandError("The demo registry did not import.")
        self.stdout.write(f"Demo registry: {result.summary()}.")
        if registry_only:
            return
        with transaction.atomic():
            agency = Agency.objects.get(code=DEMO_COMMANDER_AGENCY)
            for email, name, role in DEMO_USERS:
                user, _ = User.objects.update_or_create(
                    email=email,
                    defaults={
                        "full_name": name,
                        "role": role,
                        "agency": agency if role == User.Role.COMMANDER else None,
                        "is_active": True,
                        "is_staff": role == User.Role.COORDINATOR,
                        "is_superuser": role == User.Role.COORDINATOR,
                    },
                )
                # Reset every time so the printed logins always work.
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
                EmailAddress.objects.update_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                if permissions.mfa_required(user) and not permissions.mfa_enabled(user):
                    TOTP.activate(user, DEMO_TOTP_SECRET)
                    RecoveryCodes.activate(user)
                if role == User.Role.COMMANDER:
                    Contact.objects.filter(agency=agency, role=Contact.Role.PRIMARY).update(
                        user=user
                    )
        created = load_demo_poll(
            coordinator=User.objects.get(email=DEMO_USERS[0][0]), keep_unanswered=agency
        )
        if created:
            poll, asked, answered = created
            self.stdout.write(
                f"Demo poll “{poll.title}”: {asked} agencies asked, {answered} answered."
            )
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {DEMO_PASSWORD}):"))
        for email, _name, role in DEMO_USERS:
            extra = f" for {agency.name}" if role == User.Role.COMMANDER else ""
            user = User.objects.get(email=email)
            if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
                extra += " (two-factor: see below)"
            self.stdout.write(f"  {role.label:<22} {email}{extra}")
        self.stdout.write(
            f"Two-factor secret of the demo logins that need it: {DEMO_TOTP_SECRET}\n"
            "  add it to an authenticator app, or run: .venv/bin/python manage.py demo_totp\n"
            f"  current code: {demo_totp_code()}"
        )


def demo_totp_code() -> str:
    import time

    from allauth.mfa import app_settings

    return format_hotp_value(
        hotp_value(DEMO_TOTP_SECRET, int(time.time()) // app_settings.TOTP_PERIOD)
    )
