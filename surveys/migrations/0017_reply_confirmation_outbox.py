"""An answer's confirmation email is kept with its version ("due" until a worker sends it),
instead of a queue message per answer. Versions saved before this were confirmed (or not)
already: they stay "" (not asked). The columns keep their defaults in the database, so that
web processes started before this go on saving answers while a deploy rolls. The index holds
only the confirmations waiting to go."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0016_fewer_indexes_per_write"),
    ]

    operations = [
        migrations.AddField(
            model_name="replyversion",
            name="confirmation",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Not asked"),
                    ("due", "Due"),
                    ("sent", "Sent"),
                    ("failed", "Could not be sent"),
                ],
                db_default="",
                default="",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="replyversion",
            name="confirmation_attempts",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="replyversion",
            name="confirmation_claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="replyversion",
            index=models.Index(
                condition=models.Q(("confirmation", "due")),
                fields=["id"],
                name="replyversion_confirm_due_idx",
            ),
        ),
    ]
