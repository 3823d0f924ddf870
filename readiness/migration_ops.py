"""Operations for this project's migrations."""

from django.db import migrations


def drop_key_index(app_label: str, model_name: str, field_name: str) -> migrations.RunPython:
    """Drop the plain one-column index Django made for a foreign key, and only that, leaving the
    key's constraint alone: AlterField(db_index=False) drops and adds the constraint again,
    which checks every row of a large table while it holds the table's lock. Paired with that
    AlterField as a state operation (SeparateDatabaseAndState). Reversible."""

    def index_names(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        column = model._meta.get_field(field_name).column
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        names = [name for name, c in constraints.items()
                 if c["index"] and c["columns"] == [column]
                 and not (c["unique"] or c["primary_key"] or c["foreign_key"])]  # fmt: skip
        return model, names

    def forwards(apps, schema_editor):
        model, names = index_names(apps, schema_editor)
        for name in names:
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def backwards(apps, schema_editor):
        model, names = index_names(apps, schema_editor)
        if not names:
            field = model._meta.get_field(field_name)
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))

    return migrations.RunPython(forwards, backwards, elidable=False)
