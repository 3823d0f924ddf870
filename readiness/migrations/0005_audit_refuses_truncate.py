"""On PostgreSQL, the audit table refuses TRUNCATE too (0003 refuses UPDATE and DELETE, which
TRUNCATE bypasses). Only a session that says so first may empty it: the test runner's flush
between tests (tests/conftest.py). The README shows how to grant the app's database role only
INSERT and SELECT on the table, which no trigger can replace."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION readiness_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('readiness.audit_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only (TRUNCATE refused)';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER readiness_auditevent_no_truncate
    BEFORE TRUNCATE ON readiness_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION readiness_audit_no_truncate();
"""
DROP = """
DROP TRIGGER IF EXISTS readiness_auditevent_no_truncate ON readiness_auditevent;
DROP FUNCTION IF EXISTS readiness_audit_no_truncate();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("readiness", "0004_api_tokens")]

    operations = [migrations.RunPython(forward, backward)]
