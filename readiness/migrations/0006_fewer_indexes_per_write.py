"""Fewer indexes to write per answer, invitation and audit event: the foreign keys' own
indexes, which composite indexes already cover."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from readiness.migration_ops import drop_key_index


class Migration(migrations.Migration):
    dependencies = [
        ("readiness", "0005_audit_refuses_truncate"),
    ]

    operations = [
        # The foreign keys' own indexes go (composite indexes that start with the key cover
        # them); their constraints stay as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                drop_key_index("readiness", "auditevent", "actor"),
            ],
        ),
    ]
