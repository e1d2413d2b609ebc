"""The policy editor's JSON boxes (its signal options and shadow signals): Django's ``forms.JSONField`` made
safe for what a box may hold."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms.fields import InvalidJSONInput
from django.utils.translation import gettext_lazy as _


def _not_text(value: Any) -> bool:
    """Whether parsed JSON holds a string (or key) that is no text: a NUL or a lone surrogate (``"\\ud800"``).

    Iterative: the value may be nested nearly as deep as Python's recursion limit allows.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


class PolicyJSONField(forms.JSONField):
    """Django's JSON form field, which lets a ``RecursionError`` through: JSON nested past Python's recursion
    limit is the same form error as any invalid JSON, not a server error (red team, round twenty-five).

    SECURITY: JSON may spell a NUL (``"\\u0000"``) or a lone surrogate (``"\\ud800"``): neither is text
    PostgreSQL's ``jsonb`` stores, and the surrogate, written back into the box by Django's
    ``prepare_value`` (``ensure_ascii=False``), made the page itself unencodable (a 500). Both are a form
    error, and the box shows what was typed (red team, round thirty-nine).
    """

    default_error_messages = {
        "not_text": _("Enter JSON without NUL characters (\\u0000) or lone surrogates (\\ud800 to \\udfff)."),
    }

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": ""}
            ) from None
        if _not_text(converted):
            raise forms.ValidationError(self.error_messages["not_text"], code="not_text")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            bound = super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)
        if not self.disabled and data is not None and _not_text(bound):
            return InvalidJSONInput(data)
        return bound

    def prepare_value(self, value: Any) -> Any:
        shown = super().prepare_value(value)
        try:
            shown.encode("utf-8")
        except UnicodeEncodeError:
            # Never an unencodable page: write what is no text as JSON escapes.
            return json.dumps(value, ensure_ascii=True, cls=self.encoder)
        return shown


__all__ = ["PolicyJSONField"]
