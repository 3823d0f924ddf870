from django.core.management.base import BaseCommand, CommandError
from django.test import RequestFactory

from agencies.models import Agency
from readiness.accounts import services
from readiness.models import User


class Command(BaseCommand):
    help = (
        "Issue an API token (as the API tokens page does) and print its key: for scripted set-ups "
        "such as CI. The issuing coordinator is recorded in the audit trail."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="What will use the token.")
        parser.add_argument("--role", choices=User.Role.values, default=User.Role.OFFICIAL)
        parser.add_argument("--agency", help="A commander's token: the agency's code.")
        parser.add_argument(
            "--by", required=True, help="Email of the coordinator issuing it (for the audit)."
        )

    def handle(self, *args, name, role, agency, by, **options):
        issuer = User.objects.filter(email__iexact=by, role=User.Role.COORDINATOR).first()
        if issuer is None:
            raise CommandError(f"No coordinator with the email {by}.")
        found = None
        if agency:
            found = Agency.objects.filter(code=agency.lower()).first()
            if found is None:
                raise CommandError(f"No agency with the code {agency}.")
        if role == User.Role.COMMANDER and found is None:
            raise CommandError("A commander's token needs --agency.")
        request = RequestFactory().post("/api-tokens/")
        request.user = issuer
        _, key = services.api_token_issue(request=request, name=name, role=role, agency=found)
        self.stdout.write(key)
