"""Copy onto each team line what the dashboard groups and filters by (the answer's decision,
the team's type and level), filled in for the lines already saved."""

import django.db.models.deletion
from django.db import migrations, models

FILL = """
    UPDATE surveys_replyline SET
        decision = (SELECT r.decision FROM surveys_reply r WHERE r.id = surveys_replyline.reply_id),
        team_type_id = (SELECT t.team_type_id FROM agencies_specialteam t
                        WHERE t.id = surveys_replyline.team_id),
        team_level = (SELECT t.level FROM agencies_specialteam t
                      WHERE t.id = surveys_replyline.team_id)
"""


def fill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            # The foreign keys are deferred: checked now, so that the columns can be made
            # NOT NULL in this same transaction.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(FILL)


class Migration(migrations.Migration):
    dependencies = [
        ("agencies", "0012_agency_name_index"),
        ("surveys", "0014_reply_dashboard_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="replyline",
            name="decision",
            field=models.CharField(
                choices=[
                    ("available", "Available"),
                    ("conditional", "Available with conditions"),
                    ("unavailable", "Unavailable"),
                ],
                max_length=20,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="replyline",
            name="team_type",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="agencies.teamtype",
            ),
        ),
        migrations.AddField(
            model_name="replyline",
            name="team_level",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="replyline",
            name="decision",
            field=models.CharField(
                choices=[
                    ("available", "Available"),
                    ("conditional", "Available with conditions"),
                    ("unavailable", "Unavailable"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="replyline",
            name="team_type",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="agencies.teamtype",
            ),
        ),
    ]
