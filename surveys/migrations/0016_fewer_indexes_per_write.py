"""Fewer indexes to write per answer, invitation and audit event: the foreign keys' own
indexes, which composite indexes already cover."""

import django.db.models.deletion
from django.db import migrations, models

from readiness.migration_ops import drop_key_index


class Migration(migrations.Migration):
    dependencies = [
        ("agencies", "0012_agency_name_index"),
        ("surveys", "0015_line_dashboard_columns"),
    ]

    operations = [
        # The foreign keys' own indexes go (composite indexes that start with the key cover
        # them); their constraints stay as they are.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="invitation",
                    name="agency",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="invitations",
                        to="agencies.agency",
                    ),
                ),
                migrations.AlterField(
                    model_name="invitation",
                    name="poll",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="invitations",
                        to="surveys.poll",
                    ),
                ),
                migrations.AlterField(
                    model_name="reply",
                    name="poll",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="replies",
                        to="surveys.poll",
                    ),
                ),
                migrations.AlterField(
                    model_name="replyline",
                    name="poll",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="surveys.poll",
                    ),
                ),
                migrations.AlterField(
                    model_name="replyline",
                    name="reply",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="lines",
                        to="surveys.reply",
                    ),
                ),
                migrations.AlterField(
                    model_name="replyversion",
                    name="poll",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reply_versions",
                        to="surveys.poll",
                    ),
                ),
                migrations.AlterField(
                    model_name="replyversion",
                    name="reply",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="surveys.reply",
                    ),
                ),
            ],
            database_operations=[
                drop_key_index("surveys", "invitation", "agency"),
                drop_key_index("surveys", "invitation", "poll"),
                drop_key_index("surveys", "reply", "poll"),
                drop_key_index("surveys", "replyline", "poll"),
                drop_key_index("surveys", "replyline", "reply"),
                drop_key_index("surveys", "replyversion", "poll"),
                drop_key_index("surveys", "replyversion", "reply"),
            ],
        ),
        migrations.AddIndex(
            model_name="invitation",
            index=models.Index(fields=["agency", "poll"], name="invitation_agency_poll_idx"),
        ),
    ]
