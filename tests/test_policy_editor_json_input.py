"""Red team round thirty-nine (a): hostile JSON in the policy editor's two JSON boxes.

* A lone surrogate (``"\\ud800"``, valid JSON, no character) anywhere in ``signal_options`` or
  ``shadow_signals``: the form refuses it (not a configured signal...), then shows the box again, and Django's
  ``forms.JSONField.prepare_value`` writes the value back with ``ensure_ascii=False``. The page cannot be
  encoded to UTF-8 (``UnicodeEncodeError`` in ``HttpResponse.make_bytes``): a 500 on every database.
  ``policy_forms._JSONField`` catches only ``RecursionError``.
* The items of a list option (``AnonymousNetwork.extra_hosting_asns``, AS numbers) are never checked:
  ``policy_validation.signal_problem`` checks numbers and booleans only, and the signal's constructor puts the
  items in a ``frozenset``. ``["13335"]``, ``[null]``, ``[1.5]``, ``[-1]`` are reviewed and stored as a staff
  request (a 2xx that accepted garbage: once approved, the "hosting network" it names matches no login);
  ``["\\u0000"]`` is a 500 on PostgreSQL (``jsonb`` refuses it in ``StaffApproval.payload``).
"""

from __future__ import annotations

from typing import Any

import pytest

from authguard.models import StaffApproval

from .console_data import staff_client, staff_user
from .test_policy_editor import ADD, PERMS, page_values

pytestmark = [pytest.mark.django_db]


def _analyst() -> Any:
    return staff_client(staff_user("tuner", perms=PERMS), raise_request_exception=False)


@pytest.mark.parametrize(
    "changes",
    [
        {"signal_options": '{"\\ud800": {"score": 1}}'},
        {"shadow_signals": '[{"NAME": "authguard.risk_signals.Velocity", "OPTIONS": {"\\ud800": 1}}]'},
    ],
    ids=["signal-options-key", "shadow-signals-option"],
)
@pytest.mark.parametrize("button", ["_review", "_backtest"])
def test_policy_editor_json_box_with_a_lone_surrogate_answers_its_form_error_not_500(
    changes: dict[str, str], button: str
) -> None:
    """Secure: a JSON box holding "\\ud800" is refused with the form's worded error (200, the form again),
    like any other unknown signal or option. Had: a staff session with the policy editor's permissions."""
    analyst = _analyst()
    data = {**page_values(analyst.get(ADD)), "comment": "try", **changes}
    page = analyst.post(ADD, {**data, button: "1"})
    assert page.status_code < 500, page.status_code
    assert not StaffApproval.objects.exists()


@pytest.mark.parametrize(
    "asns",
    ['["13335"]', "[null]", "[1.5]", "[-1]", '["\\u0000"]'],
    ids=["string", "null", "float", "negative", "nul"],
)
def test_policy_editor_extra_hosting_asns_of_the_wrong_type_are_refused_not_reviewed(asns: str) -> None:
    """Secure: a list of AS numbers that holds a string, null, a fraction or a NUL is refused with a worded
    error (as the typed field refuses it) and nothing is asked of the second staff member; never a reviewed
    request (SQLite) nor a 500 (PostgreSQL). Had: a staff session with the policy editor's permissions
    (a typo in the JSON box, or an insider making a rule inert under four eyes)."""
    analyst = _analyst()
    data = {
        **page_values(analyst.get(ADD)),
        "comment": "count the new CDN as hosting",
        "signal_options": '{"authguard.risk_signals.AnonymousNetwork": {"extra_hosting_asns": ' + asns + "}}",
    }
    page = analyst.post(ADD, {**data, "_review": "1"})
    assert page.status_code < 500, page.status_code
    assert not (page.context and page.context.get("reviewed")), "the garbage list was reviewed"
    assert not StaffApproval.objects.exists()


@pytest.mark.parametrize("value", [5, "JP", ["J\x00"], ["\ud800"], [""], [None]], ids=repr)
def test_a_text_list_option_of_the_wrong_shape_is_refused(value: object) -> None:
    """Review, round forty: ``home_countries: 5`` passed the editor's check, and once approved the signal
    raised at every sign-in (a step-up for everyone); ``"JP"`` read as {"J", "P"}."""
    from authguard.risk.policy_validation import signal_problem

    problem = signal_problem("authguard.risk_signals.AccountContext", {"home_countries": value})
    assert problem is not None and "home_countries" in problem
    assert signal_problem("authguard.risk_signals.AccountContext", {"home_countries": ["JP", "US"]}) is None
