"""Template filters that show stored sign-in facts in the reader's language: ``{% load authguard_display %}``.

authguard writes what it saw of a sign-in once, in English, when it happens: a browser summary such as
"Chrome 131 on Windows 10" (``KnownDevice.label``, ``LoginEvent.device_summary``,
``SessionRecord.device_summary``) and a place such as "Tokyo, JP", or "unknown" when GeoIP knows nothing
(``KnownDevice.last_place``, ``SessionRecord.place``). The stored text stays as it is (staff search it, and
it is evidence); these filters translate, at display time, only the words authguard itself put into it: the
connective " on ", the place fallback "unknown", and ua-parser's "Other" for a browser it did not recognise.
Names of browsers, operating systems and cities are shown as stored.

``{{ device.label|device_label }}``, ``{{ device.last_place|place_label }}``,
``{{ factor.name|chosen_name }}``. The results are plain text, escaped as usual by the template. A browser
summary (written from the User-Agent whoever signed in chose) and a name someone gave a factor lose their
phone numbers and domain names (:mod:`authguard.notifications.lures`).
"""

from __future__ import annotations

from django import template
from django.utils.translation import gettext, pgettext

from authguard.notifications.lures import shown_name, strip_lures

register = template.Library()

#: What the stored browser summary puts between the browser and the operating system.
CONNECTIVE = " on "
#: The stored place when nothing is known about where a sign-in came from.
UNKNOWN_PLACE = "unknown"
#: ua-parser's family name for a browser it does not recognise (and the summary of an empty user agent).
UNKNOWN_BROWSER = "Other"


def _browser(name: str) -> str:
    return gettext("unknown browser") if name == UNKNOWN_BROWSER else name


@register.filter
def device_label(value: object) -> str:
    """A stored browser summary in the active language: "Chrome 131 on Windows 10" is
    "Chrome 131（Windows 10）" in Japanese. Text of another shape is shown unchanged."""
    # SECURITY: ua-parser's catch-all keeps up to 50 characters of a "Spider/2" he wrote: "SECURITY DESK CALL
    # 0120 987 654 Spider 2 on iOS 18" on her security page (red team, round fifty-four).
    text = "" if value is None else strip_lures(str(value))
    browser, connective, os_name = text.partition(CONNECTIVE)
    if not connective or not browser.strip() or not os_name.strip():
        return _browser(text)
    return gettext("%(browser)s on %(os)s") % {"browser": _browser(browser), "os": os_name}


@register.filter
def place_label(value: object) -> str:
    """A stored place in the active language: the fallback "unknown" is translated, a real place
    ("Tokyo, JP") is shown unchanged."""
    text = "" if value is None else str(value)
    return pgettext("place", "unknown") if text == UNKNOWN_PLACE else text


@register.filter
def chosen_name(value: object) -> str:
    """A name someone gave a factor (perhaps a thief who added it), one visible line without phone numbers,
    links or domain names: the security page names his passkey without handing her his desk's number (red
    team, round fifty-four)."""
    return shown_name(value)
