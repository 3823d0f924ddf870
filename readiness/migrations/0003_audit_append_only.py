"""On PostgreSQL, the audit table refuses UPDATE and DELETE: append-only below the app too."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION readiness_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER readiness_auditevent_append_only
    BEFORE UPDATE OR DELETE ON readiness_auditevent
    FOR EACH ROW EXECUTE FUNCTION readiness_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS readiness_auditevent_append_only ON readiness_auditevent;
DROP FUNCTION IF EXISTS readiness_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # None: the % in the SQL is not a placeholder


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("readiness", "0002_audit_event")]

    operations = [migrations.RunPython(forward, backward)]
