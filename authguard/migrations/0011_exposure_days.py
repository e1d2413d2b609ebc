# Placeholder in the migration chain; its operations are filled in by the change that needs them.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0010_dbsc"),
    ]

    operations = []
