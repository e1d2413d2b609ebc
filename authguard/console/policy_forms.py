"""The policy editor's forms: the policy in force signal by signal, typed option fields, the add form
(:class:`PolicyVersionForm`) and the list of changes (:func:`policy_changes`); the admin that shows them is
:mod:`authguard.console.policy_editor`."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from authguard.conf import app_settings
from authguard.console.policy_json import PolicyJSONField
from authguard.models import PolicyVersion
from authguard.risk import backtest, signal_info
from authguard.risk import policy as runtime_policy
from authguard.risk.signal_info import BOOL, FLOAT, FLOAT_LIST, INT, INT_LIST, OptionInfo, SignalInfo

#: The hidden field the editor's own form sends: without it a POST is a plain one (a script, an older
#: page) whose JSON fields are the whole proposal, asked for at once as before.
MARKER = "signal_forms"
#: The hidden field with the digest of the values the analyst reviewed (see :func:`proposal_digest`).
REVIEWED = "reviewed"


# -- the policy in force, signal by signal ------------------------------------------------------------------


@dataclass
class SignalState:
    """One configured signal: what it is, and its values in the settings, in force and on trial."""

    info: SignalInfo
    slug: str
    #: The settings' values (the class defaults with ``AUTHGUARD_RISK_SIGNALS``' ``OPTIONS``): "default".
    baseline: dict[str, Any]
    #: The values it decides with under the policy in force.
    enforced: dict[str, Any]
    #: The values it runs with report-only under the policy in force (None: no trial).
    trial: dict[str, Any] | None = None

    def field_name(self, key: str) -> str:
        return f"{self.slug}__{key}"

    @property
    def shadow_name(self) -> str:
        return f"{self.slug}__shadow"

    def class_default(self, key: str) -> Any:
        """The class default of an option (what a shadow entry's ``OPTIONS`` are relative to)."""
        return next((o.default for o in self.info.options if o.key == key), None)


@dataclass
class InForce:
    """The policy in force, as the editor shows it."""

    step_up: int
    deny: int
    signals: list[SignalState]
    #: Report-only signals that are no trial of a configured signal (kept in the advanced section).
    extra_shadow: list[dict[str, Any]] = field(default_factory=list)

    def signal(self, name: str) -> SignalState | None:
        return next((s for s in self.signals if s.info.name == name), None)


def _full_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    try:
        defaults = dict(getattr(import_string(name), "defaults", {}) or {})
    except ImportError:
        defaults = {}
    return {**defaults, **options}


def policy_in_force() -> InForce:
    """The policy in force, signal by signal (each signal under its class name, never its dotted path)."""

    policy = runtime_policy.current_policy()
    settings_options = {entry["NAME"]: entry.get("OPTIONS", {}) for entry in app_settings.RISK_SIGNALS}
    shadows = [dict(entry) for entry in policy.shadow_config]
    used: set[str] = set()
    signals = []
    for entry in policy.signal_config:
        name = entry["NAME"]
        slug = name.rsplit(".", 1)[-1]
        if slug in used:
            slug = f"{slug}_{len(used)}"
        used.add(slug)
        trial = next((s for s in shadows if s.get("NAME") == name), None)
        if trial is not None:
            shadows.remove(trial)
        signals.append(
            SignalState(
                info=signal_info.describe_signal(name),
                slug=slug,
                baseline=_full_options(name, settings_options.get(name, {})),
                enforced=_full_options(name, entry.get("OPTIONS", {})),
                trial=_full_options(name, trial.get("OPTIONS") or {}) if trial is not None else None,
            )
        )
    return InForce(
        step_up=policy.thresholds.step_up, deny=policy.thresholds.deny, signals=signals, extra_shadow=shadows
    )


# -- typed fields -------------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_words(kind: str, minimum: float | None, maximum: float | None) -> str:
    whole = kind in (INT, INT_LIST)
    lo, hi = _number(minimum), _number(maximum)
    if minimum is not None and maximum is not None:
        words = (
            gettext("a whole number from %(lo)s to %(hi)s")
            if whole
            else gettext("a number from %(lo)s to %(hi)s")
        )
    elif minimum is not None:
        words = (
            gettext("a whole number of at least %(lo)s") if whole else gettext("a number of at least %(lo)s")
        )
    else:
        words = gettext("a whole number") if whole else gettext("a number")
    return words % {"lo": lo, "hi": hi}


def option_message(signal: str, option: OptionInfo, minimum: float | None, maximum: float | None) -> str:
    """The one message of an option's field: "Unusual hour: 'Points for an unusual hour' must be …"."""
    if option.kind in (INT_LIST, FLOAT_LIST):
        what = gettext("a list of numbers, each %(range)s, separated by commas") % {
            "range": _range_words(option.kind, minimum, maximum)
        }
    elif option.kind in (INT, FLOAT):
        what = _range_words(option.kind, minimum, maximum)
    else:
        what = gettext("a list of words separated by commas")
    return gettext("%(signal)s: '%(option)s' must be %(what)s") % {
        "signal": signal,
        "option": option.label,
        "what": what,
    }


class NumberField(forms.FloatField):
    """A fractional option, shown without a trailing ``.0`` (4, not 4.0)."""

    def prepare_value(self, value: Any) -> Any:
        return _number(value) if isinstance(value, float) and math.isfinite(value) else value


class ListField(forms.CharField):
    """A list option as text: items separated by commas (or spaces); numbers checked against the bounds."""

    def __init__(
        self, *, kind: str, minimum: float | None, maximum: float | None, message: str, **kwargs: Any
    ) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.kind, self.minimum, self.maximum, self.message = kind, minimum, maximum, message

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(_number(v) if isinstance(v, int | float) else str(v) for v in value)
        return value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        items = [item for item in re.split(r"[,\s、]+", text or "") if item]
        if self.kind not in (INT_LIST, FLOAT_LIST):
            return items
        numbers: list[int | float] = []
        for item in items:
            try:
                number: int | float = int(item) if self.kind == INT_LIST else float(item)
            except ValueError:
                raise forms.ValidationError(self.message, code="invalid") from None
            if not math.isfinite(number) or (
                (self.minimum is not None and number < self.minimum)
                or (self.maximum is not None and number > self.maximum)
            ):
                raise forms.ValidationError(self.message, code="invalid")
            numbers.append(number)
        return numbers


def _bounds(option: OptionInfo, *values: Any) -> tuple[float | None, float | None]:
    """The option's bounds, widened to take the values already configured (never refuse what is in force)."""
    lo, hi = option.minimum, option.maximum
    for value in values:
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int | float):
                continue
            lo = min(lo, item) if lo is not None else None
            hi = max(hi, item) if hi is not None else None
    return lo, hi


def option_field(state: SignalState, option: OptionInfo) -> forms.Field:
    """A typed form field for one option, whose every error names the signal and the option in words."""
    values = [state.baseline.get(option.key), state.enforced.get(option.key)]
    if state.trial is not None:
        values.append(state.trial.get(option.key))
    kind = option.kind
    if kind == INT and any(isinstance(v, float) for v in values):
        kind = FLOAT  # a whole-number option set to a fraction in the settings: keep it editable
    lo, hi = _bounds(option, *values)
    message = option_message(state.info.label, OptionInfo(option.key, option.label, kind, None), lo, hi)
    errors = {"invalid": message, "required": message, "min_value": message, "max_value": message}
    common: dict[str, Any] = {"label": option.label, "error_messages": errors}
    if kind == BOOL:
        return forms.BooleanField(required=False, label=option.label)
    if kind == INT:
        return forms.IntegerField(
            min_value=None if lo is None else int(lo),
            max_value=None if hi is None else int(hi),
            widget=forms.NumberInput(attrs={"step": "1"}),
            **common,
        )
    if kind == FLOAT:
        return NumberField(
            min_value=lo, max_value=hi, widget=forms.NumberInput(attrs={"step": "any"}), **common
        )
    return ListField(kind=kind, minimum=lo, maximum=hi, message=message, **common)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value) if value else gettext("(none)")
    return str(value)


def proposal_digest(payload: dict[str, Any]) -> str:
    """A digest of a proposal's values (not its comment): the confirmation must match what was reviewed."""
    values = {key: payload.get(key) for key in ("thresholds", "signal_options", "shadow_signals")}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:32]


# -- the form ------------------------------------------------------------------------------------------------


class PolicyVersionForm(forms.ModelForm):
    """A new policy version: thresholds, one fieldset per configured signal, comment; the model's JSON
    fields as an advanced addition. Validated like the settings
    (:func:`authguard.risk.policy.policy_problem`)."""

    step_up = forms.IntegerField(
        label=_("Step up at a score of"),
        min_value=0,
        max_value=100,
        help_text=_("Sign-ins scoring this much or more are asked for a second factor (0 to 100)."),
    )
    deny = forms.IntegerField(
        label=_("Refuse at a score of"),
        min_value=0,
        max_value=100,
        help_text=_(
            "Sign-ins scoring this much or more are refused (0 to 100, not below the step-up score)."
        ),
    )
    backtest_days = forms.IntegerField(
        label=_("Days to backtest"),
        min_value=1,
        max_value=backtest.MAX_DAYS,
        initial=30,
        required=False,
        help_text=_("Replay this many days of recorded sign-ins; nothing is saved."),
    )
    signal_forms = forms.CharField(required=False, widget=forms.HiddenInput, initial="1")

    class Meta:
        model = PolicyVersion
        fields = ("comment", "signal_options", "shadow_signals")
        field_classes = {"signal_options": PolicyJSONField, "shadow_signals": PolicyJSONField}
        widgets = {
            "comment": forms.TextInput(attrs={"size": 80}),
            "signal_options": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            "shadow_signals": forms.Textarea(attrs={"rows": 3, "cols": 80}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_force = policy_in_force()
        self.fields["comment"].required = True
        self.fields["comment"].label = _("Why this change")
        self.fields["comment"].help_text = _("Kept with the version, and shown to whoever approves it.")
        self.fields["signal_options"].required = False
        self.fields["signal_options"].label = _("More option changes (JSON)")
        self.fields["signal_options"].help_text = _(
            "Applied on top of the forms above: {signal path: {option: value}}."
        )
        self.fields["shadow_signals"].required = False
        self.fields["shadow_signals"].label = _("Other shadow signals (JSON)")
        self.fields["shadow_signals"].help_text = _(
            'Signals that are not configured, run as shadows: [{"NAME": path, "OPTIONS": {...}}].'
        )
        plain_post = self.is_bound and not self.data.get(MARKER)
        filled: Any = self.data.copy() if plain_post else None  # type: ignore[attr-defined]
        for state in self.in_force.signals:
            values = state.trial if state.trial is not None else state.enforced
            for option in state.info.options:
                name = state.field_name(option.key)
                self.fields[name] = option_field(state, option)
                self.initial.setdefault(name, values.get(option.key))
                if plain_post:
                    # A plain POST: its JSON is the whole proposal (as before the forms); the rest: settings.
                    value = state.baseline.get(option.key)
                    if option.kind == BOOL:
                        if value:
                            filled[name] = "on"
                    else:
                        filled[name] = self.fields[name].prepare_value(value)
            self.fields[state.shadow_name] = forms.BooleanField(
                required=False, label=_("Shadow trial: try these values without them deciding")
            )
            self.initial.setdefault(state.shadow_name, state.trial is not None)
        if plain_post:
            self.data = filled
        self._payload: dict[str, Any] | None = None

    # -- what the template shows --------------------------------------------------------------------------

    def signal_groups(self) -> list[dict[str, Any]]:
        """Per configured signal: its words, its shadow trial box and its options' fields with defaults."""
        groups = []
        for state in self.in_force.signals:
            rows = []
            for option in state.info.options:
                bound = self[state.field_name(option.key)]
                default = state.baseline.get(option.key)
                in_force_value = state.enforced.get(option.key)
                rows.append(
                    {
                        "field": bound,
                        "key": option.key,
                        "kind": option.kind,
                        "default": _shown(default),
                        "in_force": _shown(in_force_value),
                        "changed_in_force": not _same(default, in_force_value),
                    }
                )
            groups.append(
                {
                    "slug": state.slug,
                    "label": state.info.label,
                    "description": state.info.description,
                    "shadow": self[state.shadow_name],
                    "on_trial": state.trial is not None,
                    "rows": rows,
                }
            )
        return groups

    def worded_errors(self) -> list[str]:
        """Every error of the form as a sentence that names what it is about (never a position)."""
        words = []
        own = {"step_up", "deny", "comment", "backtest_days", "signal_options", "shadow_signals"}
        for name, errors in self.errors.items():
            if name == NON_FIELD_ERRORS:
                continue  # the admin shows them above the form
            for error in errors:
                if name in own:
                    words.append(f"{self.fields[name].label}: {error}")
                else:
                    words.append(str(error))
        return words

    # -- validation and the proposal ------------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        step_up, deny = data.get("step_up"), data.get("deny")
        if step_up is not None and deny is not None and step_up > deny:
            self.add_error("deny", gettext("The step-up score must not exceed the refusal score."))
        extra_options: Any = data.get("signal_options")
        if extra_options in (None, ""):
            extra_options = {}
        if not isinstance(extra_options, dict):
            self.add_error(
                "signal_options", gettext("They must be a dict of {signal path: {option: value}}.")
            )
        extra_shadow: Any = data.get("shadow_signals")
        if extra_shadow in (None, ""):
            extra_shadow = []
        if not isinstance(extra_shadow, list):
            self.add_error("shadow_signals", gettext('They must be a list of {"NAME", "OPTIONS"}.'))
        if self.errors:
            return data
        signal_options: dict[str, Any] = {}
        shadow: list[dict[str, Any]] = []
        for state in self.in_force.signals:
            values = {o.key: data.get(state.field_name(o.key)) for o in state.info.options}
            if data.get(state.shadow_name):
                # Report-only: the form's values run as a shadow; the signal keeps deciding as in force.
                options = {k: v for k, v in values.items() if not _same(v, state.class_default(k))}
                shadow.append({"NAME": state.info.name, "OPTIONS": options})
                values = state.enforced
            changed = {k: v for k, v in values.items() if not _same(v, state.baseline.get(k))}
            if changed:
                signal_options[state.info.name] = changed
        for name, options in extra_options.items():
            if isinstance(options, dict) and isinstance(signal_options.get(name), dict):
                signal_options[name] = {**signal_options[name], **options}
            else:
                signal_options[name] = options
        self._payload = {
            "comment": data.get("comment", ""),
            "thresholds": {"step_up": step_up, "deny": deny},
            "signal_options": signal_options,
            "shadow_signals": [*shadow, *extra_shadow],
        }
        return data

    def _post_clean(self) -> None:
        # The model's own check runs on the whole proposal (not on the advanced fields alone).
        if self._payload is None:
            return
        problem = runtime_policy.policy_problem(
            thresholds=self._payload["thresholds"],
            signal_options=self._payload["signal_options"],
            shadow_signals=self._payload["shadow_signals"],
        )
        if problem:
            self._payload = None
            self.add_error(None, problem)

    def payload(self) -> dict[str, Any]:
        """The validated proposal, in the shape :func:`authguard.console.approvals.request_action` takes."""
        if self._payload is None:
            raise ValueError("the form is not valid")
        return self._payload

    @property
    def plain_post(self) -> bool:
        """A POST without the editor's forms (a script, an older page): its JSON is the whole proposal."""
        return bool(self.is_bound and not self.data.get(MARKER))

    def proposed(self) -> runtime_policy.Policy:
        """The validated form as a run-time policy (for a backtest)."""
        payload = self.payload()
        return runtime_policy.build_policy(
            thresholds=payload["thresholds"],
            signal_options=payload["signal_options"],
            shadow_signals=payload["shadow_signals"],
        )

    def changes(self) -> list[dict[str, str]]:
        """Only what changes against the policy in force, old → new, in words."""
        return policy_changes(self.in_force, self.payload())

    def stash(self) -> dict[str, Any]:
        """The cleaned values, to show the form again filled in (initial data)."""
        return dict(self.cleaned_data)


def policy_changes(current: InForce, payload: dict[str, Any]) -> list[dict[str, str]]:
    """The rows of the diff: ``{"what", "option", "old", "new"}``, only for values that change."""
    rows: list[dict[str, str]] = []
    thresholds = payload.get("thresholds") or {}
    for key, label, old in (
        ("step_up", gettext("Step up at a score of"), current.step_up),
        ("deny", gettext("Refuse at a score of"), current.deny),
    ):
        new = thresholds.get(key, old)
        if not _same(old, new):
            rows.append(
                {"what": gettext("Thresholds"), "option": label, "old": _shown(old), "new": _shown(new)}
            )
    options = payload.get("signal_options") or {}
    shadows = [dict(s) for s in payload.get("shadow_signals") or []]
    for state in current.signals:
        name = state.info.name
        enforced = {**state.baseline, **(options.get(name) or {})}
        for option in state.info.options:
            was, now = state.enforced.get(option.key), enforced.get(option.key)
            if not _same(was, now):
                rows.append(
                    {"what": state.info.label, "option": option.label, "old": _shown(was), "new": _shown(now)}
                )
        trial_entry = next((s for s in shadows if s.get("NAME") == name), None)
        if trial_entry is not None:
            shadows.remove(trial_entry)
        trial = _full_options(name, trial_entry.get("OPTIONS") or {}) if trial_entry is not None else None
        report_only = gettext("%(signal)s, shadow trial") % {"signal": state.info.label}
        if (state.trial is None) != (trial is None):
            rows.append(
                {
                    "what": state.info.label,
                    "option": gettext("Shadow trial"),
                    "old": gettext("on") if state.trial is not None else gettext("off"),
                    "new": gettext("on") if trial is not None else gettext("off"),
                }
            )
        if trial is not None:
            reference = state.trial if state.trial is not None else enforced
            for option in state.info.options:
                was, now = reference.get(option.key), trial.get(option.key)
                if not _same(was, now):
                    rows.append(
                        {"what": report_only, "option": option.label, "old": _shown(was), "new": _shown(now)}
                    )
    old_extra = [signal_info.describe_signal(str(s.get("NAME"))).label for s in current.extra_shadow]
    new_extra = [
        signal_info.describe_signal(str(s.get("NAME"))).label if isinstance(s, dict) else str(s)
        for s in shadows
    ]
    if current.extra_shadow != shadows:
        rows.append(
            {
                "what": gettext("Other shadow signals"),
                "option": "",
                "old": ", ".join(old_extra) or gettext("(none)"),
                "new": ", ".join(new_extra) or gettext("(none)"),
            }
        )
    return rows
