"""The password reset of a portal, aware of the cooling-off after an e-mail change.

The customer's remedy for a takeover is a password reset by e-mail: it ends every session and revokes what
was added during the cooling-off (docs/factor-lifecycle.md). Django's ``PasswordResetForm`` looks the account
up by its *current* address and mails that one: after a thief changed the address (one phishing page can
relay the two factors that change needs), her reset with her own address found nothing and his reached him
(red team, 2026-12-05). During the cooling-off this form matches the previous address too, and mails the link
only there. Route the portal's ``password_reset`` to :class:`PasswordResetView` (system check
``authguard.W013`` warns about Django's own).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views

from authguard.factors.inventory import previous_address
from authguard.models import AccountSecurity


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form; during the cooling-off of an e-mail change, the link goes to the address from before
    the change, whichever of the two was entered."""

    def get_users(self, email: str) -> Iterator[Any]:
        found = {user.pk: user for user in super().get_users(email)}
        model = get_user_model()
        changed = AccountSecurity.objects.filter(previous_email__iexact=email).values_list("user_id")
        for user in model._default_manager.filter(pk__in=[pk for (pk,) in changed], is_active=True):
            previous = previous_address(user)
            if previous and previous.lower() == email.lower() and user.has_usable_password():
                found.setdefault(user.pk, user)
        yield from found.values()

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        # SECURITY: never to the address the change just brought in alone (maybe the thief's).
        previous = previous_address(context["user"])
        if previous:
            context = {**context, "email": previous}
        super().send_mail(
            subject_template_name,
            email_template_name,
            context,
            from_email,
            previous or to_email,
            html_email_template_name=html_email_template_name,
        )


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view with :class:`PasswordResetForm`."""

    form_class = PasswordResetForm
