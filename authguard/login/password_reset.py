"""The password reset of a portal, aware of the cooling-off after an e-mail change.

The customer's remedy for a takeover is a password reset by e-mail: it ends every session and revokes what
was added during the cooling-off (docs/factor-lifecycle.md). Django's ``PasswordResetForm`` looks the account
up by its *current* address and mails that one: after a thief changed the address (one phishing page can
relay the two factors that change needs), her reset with her own address found nothing and his reached him
(red team, 2026-12-05). During the cooling-off this form also matches every address the account had in it
(:func:`~authguard.factors.inventory.previous_addresses`) and mails the link only to those. Route the portal's
``password_reset`` to :class:`PasswordResetView` (system check ``authguard.W013`` warns about Django's own).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views

from authguard.factors.inventory import reset_addresses
from authguard.models import PreviousEmail


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form; during the cooling-off of an e-mail change, the link goes to every address the account
    had before a change in it, whichever of them or the current one was entered."""

    def get_users(self, email: str) -> Iterator[Any]:
        found = {user.pk: user for user in super().get_users(email)}
        model = get_user_model()
        # The account's AccountSecurity row shares its user's primary key.
        changed = PreviousEmail.objects.filter(email__iexact=email).values_list("account_id", flat=True)
        for user in model._default_manager.filter(pk__in=list(changed), is_active=True):
            previous = [address.lower() for address in reset_addresses(user)]
            if email.lower() in previous and user.has_usable_password():
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
        # SECURITY: never to the current address alone (the last change may be the thief's), but to each one
        # the account had during the cooling-off since her last passkey-confirmed change (after her A->B and
        # his B->C, B is hers), or to the current one she chose with her passkey (round thirty-nine).
        for address in reset_addresses(context["user"]) or [to_email]:
            super().send_mail(
                subject_template_name,
                email_template_name,
                {**context, "email": address},
                from_email,
                address,
                html_email_template_name=html_email_template_name,
            )


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view with :class:`PasswordResetForm`."""

    form_class = PasswordResetForm
