"""User-Agent strings as real browsers send them on a given day.

Browsers follow their release trains (Chrome, Edge and Firefox every four weeks, iOS/Safari minor releases
about every seven), and each device installs updates with its own lag, so a user's UA string changes
version every few weeks. Chrome's reduced UA freezes the OS part ("Windows NT 10.0", "Android 10; K",
"Intel Mac OS X 10_15_7"), which makes many users' strings identical, as in reality; iPadOS Safari
presents itself as a Mac.
"""

from __future__ import annotations

import datetime as dt
import random

_CHROME_BASE = (dt.date(2025, 1, 14), 132)
_FIREFOX_BASE = (dt.date(2025, 1, 7), 134)
_IOS_BASE = (dt.date(2024, 12, 11), 2)  # iOS 18.2


def _train(base: tuple[dt.date, int], day: dt.date, period_days: int) -> int:
    return base[1] + (day - base[0]).days // period_days


def chrome_major(day: dt.date) -> int:
    """Chrome's stable major version on ``day``."""
    return _train(_CHROME_BASE, day, 28)


def firefox_major(day: dt.date) -> int:
    """Firefox's release version on ``day``."""
    return _train(_FIREFOX_BASE, day, 28)


def ios_version(day: dt.date) -> tuple[int, int, int]:
    """The iOS 18 release (major, minor, patch) on ``day``: a minor every 7 weeks, a patch 3 weeks in."""
    days = (day - _IOS_BASE[0]).days
    minor = _IOS_BASE[1] + days // 49
    patch = 1 if days % 49 >= 21 else 0
    return 18, min(minor, 6), patch


#: (platform, browser) pairs a device can be.
PLATFORM_BROWSERS: dict[str, tuple[tuple[str, float], ...]] = {
    "windows": (("chrome", 0.58), ("edge", 0.36), ("firefox", 0.06)),
    "mac": (("safari", 0.5), ("chrome", 0.45), ("firefox", 0.05)),
    "iphone": (("safari", 0.88), ("chrome", 0.12)),
    "android": (("chrome", 1.0),),
    "ipad": (("safari", 1.0),),
}


def user_agent(platform: str, browser: str, day: dt.date) -> str:
    """The UA string a ``browser`` on ``platform`` that is up to date as of ``day`` sends."""
    cv = chrome_major(day)
    ios = ios_version(day)
    ios_str = f"{ios[0]}_{ios[1]}" + (f"_{ios[2]}" if ios[2] else "")
    safari_ver = f"{ios[0]}.{ios[1]}" + (f".{ios[2]}" if ios[2] else "")
    webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
    if platform == "windows":
        if browser == "firefox":
            fv = firefox_major(day)
            return f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{fv}.0) Gecko/20100101 Firefox/{fv}.0"
        base = f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {webkit} Chrome/{cv}.0.0.0 Safari/537.36"
        if browser == "edge":
            return f"{base} Edg/{cv}.0.{2900 + 65 * (cv - 130)}.{(day.toordinal() // 9) % 90 + 10}"
        return base
    if platform in ("mac", "ipad"):
        if browser == "chrome":
            return f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {webkit} Chrome/{cv}.0.0.0 Safari/537.36"
        if browser == "firefox":
            fv = firefox_major(day)
            return f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:{fv}.0) Gecko/20100101 Firefox/{fv}.0"
        return (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Version/{safari_ver} Safari/605.1.15"
        )
    if platform == "iphone":
        head = f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios_str} like Mac OS X) AppleWebKit/605.1.15"
        head += " (KHTML, like Gecko)"
        if browser == "chrome":
            build = f"{cv}.0.{6900 + 80 * (cv - 132)}.{(day.toordinal() // 7) % 150 + 30}"
            return f"{head} CriOS/{build} Mobile/15E148 Safari/604.1"
        return f"{head} Version/{safari_ver} Mobile/15E148 Safari/604.1"
    if platform == "android":
        return f"Mozilla/5.0 (Linux; Android 10; K) {webkit} Chrome/{cv}.0.0.0 Mobile Safari/537.36"
    raise ValueError(f"unknown platform {platform!r}")


#: Clients of automated attack tooling.
AUTOMATION_UAS: tuple[str, ...] = (
    "python-requests/2.32.3",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "curl/8.5.0",
    "axios/1.7.2",
    "okhttp/4.12.0",
)


def headless_chrome(day: dt.date) -> str:
    """Headless Chrome (Puppeteer, Playwright) as it announces itself by default."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"HeadlessChrome/{chrome_major(day)}.0.0.0 Safari/537.36"
    )


def common_ua(rng: random.Random, day: dt.date, *, max_lag_days: int = 30) -> str:
    """A browser UA drawn from what is common in Japan, up to ``max_lag_days`` out of date."""
    platform = rng.choices(("windows", "mac", "iphone", "android"), (0.35, 0.12, 0.35, 0.18))[0]
    browsers = PLATFORM_BROWSERS[platform]
    browser = rng.choices([b for b, _ in browsers], [w for _, w in browsers])[0]
    return user_agent(platform, browser, day - dt.timedelta(days=rng.randint(0, max_lag_days)))
