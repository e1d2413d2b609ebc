# Issue 16: containment by the security desk (network blocks, account containment permission, new staff
# actions of the four-eyes flow).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authguard", "0011_exposure_days"),
    ]

    operations = [
        migrations.CreateModel(
            name="NetworkBlock",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("network", models.CharField(db_index=True, max_length=64, verbose_name="network")),
                (
                    "kind",
                    models.CharField(
                        choices=[("cidr", "IP network"), ("asn", "autonomous system (ASN)")],
                        max_length=4,
                        verbose_name="kind",
                    ),
                ),
                ("until", models.DateTimeField(db_index=True, verbose_name="blocked until")),
                ("reason", models.CharField(max_length=500, verbose_name="reason (internal)")),
                ("created_at", models.DateTimeField(db_index=True, verbose_name="created")),
                (
                    "approved_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="approved by",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="requested by",
                    ),
                ),
                (
                    "ends",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="ended_by",
                        to="authguard.networkblock",
                        verbose_name="ends the block",
                    ),
                ),
            ],
            options={
                "verbose_name": "network block",
                "verbose_name_plural": "network blocks",
                "ordering": ["-created_at", "-pk"],
            },
        ),
        migrations.AlterModelOptions(
            name="accountlock",
            options={
                "permissions": [
                    ("unlock_account", "Can unlock a locked account"),
                    ("contain_account", "Can lock an account, end its sessions and force a password reset"),
                ],
                "verbose_name": "account lock",
                "verbose_name_plural": "account locks",
            },
        ),
        migrations.AlterField(
            model_name="staffapproval",
            name="action",
            field=models.CharField(
                choices=[
                    ("release_order", "release (execute) a held order"),
                    ("revoke_factor", "revoke a customer's sign-in method"),
                    ("unlock_account", "unlock an account"),
                    ("change_policy", "change the risk policy"),
                    ("lock_account", "lock an account"),
                    ("end_sessions", "end every session of an account"),
                    ("force_password_reset", "force a password reset"),
                    ("block_network", "block a network"),
                    ("end_network_block", "end a network block"),
                ],
                db_index=True,
                max_length=20,
                verbose_name="action",
            ),
        ),
    ]
