"""Forms of the brokerage's HTML pages. They only parse input; :mod:`.services` decides."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Side


class OrderForm(forms.Form):
    """An order: buy or sell a quantity of one instrument (executed at the price it was checked at or better:
    ``services.execute_order``)."""

    side = forms.ChoiceField(label=_("Buy or sell"), choices=Side.choices, widget=forms.RadioSelect)
    symbol = forms.ChoiceField(label=_("Instrument"))
    quantity = forms.IntegerField(
        label=_("Quantity (shares)"), min_value=1, max_value=services.MAX_ORDER_QUANTITY
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["symbol"].choices = [("", _("Choose an instrument"))] + [
            (i.symbol, f"{i.symbol} · {i.name} · {services.format_money(i.price, i.currency)}")
            for i in services.list_instruments()
        ]

    def add_rejection(self, rejected: services.OrderRejected) -> None:
        """Show the service's reasons for refusing the order on the matching fields (others on top)."""
        for field, messages in rejected.errors.items():
            self.add_error(field if field in self.fields else None, ValidationError(messages))


class UnlockWithCodesForm(forms.Form):
    """A locked customer without a passkey: username, a code from the authenticator app, a recovery code."""

    username = forms.CharField(
        label=_("Username"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    totp_code = forms.CharField(
        label=_("6-digit code from your authenticator app"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    recovery_code = forms.CharField(
        label=_("One of your recovery codes"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class CancelUnlockForm(forms.Form):
    """Cancel a waiting unlock with the reference from the message the customer received."""

    username = forms.CharField(
        label=_("Username"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    reference = forms.CharField(
        label=_("Reference from the message"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
