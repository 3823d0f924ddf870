from django.core.management.base import BaseCommand, CommandError

from agencies import services
from agencies.importer import read_csv_text


class Command(BaseCommand):
    help = (
        "Import agencies, special teams and contacts from a CSV file (columns in "
        "docs/registry-import.md). All or nothing: any bad row changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file, or - for standard input")
        parser.add_argument(
            "--dry-run", action="store_true", help="check and count, but change nothing"
        )

    def handle(self, *args, path, dry_run, **options):
        try:
            if path == "-":
                import sys

                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
            text = read_csv_text(data)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        result = services.registry_import(
            text=text, dry_run=dry_run, source=f"manage.py import_registry {path}"
        )
        if not result.ok:
            for error in result.errors:
                self.stderr.write(f"{path}: {error}")
            raise CommandError(
                f"{len(result.errors)} error(s) in {result.rows} row(s); nothing was imported."
            )
        prefix = "Dry run, nothing written: " if dry_run else ""
        self.stdout.write(self.style.SUCCESS(f"{prefix}{result.rows} rows. {result.summary()}."))
