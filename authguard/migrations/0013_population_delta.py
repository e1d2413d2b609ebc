from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0012_containment"),
    ]

    operations = [
        migrations.CreateModel(
            name="PopulationDelta",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=255)),
            ],
            options={
                "verbose_name": "population count increment",
                "verbose_name_plural": "population count increments",
            },
        ),
        migrations.CreateModel(
            name="PopulationFold",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("folded_at", models.DateTimeField(null=True, verbose_name="last fold")),
                ("folded", models.PositiveBigIntegerField(default=0, verbose_name="values folded so far")),
            ],
            options={
                "verbose_name": "population fold",
                "verbose_name_plural": "population folds",
            },
        ),
    ]
