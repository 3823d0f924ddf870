from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agencies import demo
from agencies.models import Agency, Contact
from readiness.models import User

DEMO_PASSWORD = "readiness-demo"  # noqa: S105 (printed demo login; refused in production)
DEMO_COMMANDER_AGENCY = "aurora-police-department"
DEMO_USERS = (
    ("coordinator@readiness.example", "Casey Coordinator", User.Role.COORDINATOR),
    ("commander@readiness.example", "Chris Commander", User.Role.COMMANDER),
    ("official@readiness.example", "Olivia Official", User.Role.OFFICIAL),
)


class Command(BaseCommand):
    help = "Load the demo registry (Illinois agencies, synthetic teams and contacts) and logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="allow loading demo logins in production"
        )

    def handle(self, *args, force, **options):
        if settings.PRODUCTION and not force:
            raise CommandError("Refusing to create demo logins in production (use --force).")
        result = demo.load_demo_registry()
        if not result.ok:
            for error in result.errors:
                self.stderr.write(str(error))
            raise CommandError("The demo registry did not import.")
        self.stdout.write(f"Demo registry: {result.summary()}.")
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
                if role == User.Role.COMMANDER:
                    Contact.objects.filter(agency=agency, role=Contact.Role.PRIMARY).update(
                        user=user
                    )
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {DEMO_PASSWORD}):"))
        for email, _name, role in DEMO_USERS:
            extra = f" for {agency.name}" if role == User.Role.COMMANDER else ""
            self.stdout.write(f"  {role.label:<22} {email}{extra}")
