"""The security dashboard: figures from aggregate queries, server-side SVG charts, and a real browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authguard.console import reports

from .console_data import NOW, build_history, demo_story, staff_client, staff_user

DASHBOARD = "/admin/authguard/loginevent/dashboard/"
RANGE = {"start": "2026-11-01", "end": "2026-11-30"}
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img" / "dashboard.png"


def demo_data() -> None:
    """The demo's customers and security desk (seed_demo), their logins, and the takeover of tanaka."""
    demo_story()


@pytest.fixture
def viewer(db):
    return staff_client(staff_user("viewer", perms=("authguard.view_loginevent",)))


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_dashboard_shows_every_panel_as_svg(viewer):
    demo_data()
    response = viewer.get(DASHBOARD, RANGE)
    assert response.status_code == 200
    html = response.content.decode()
    for chart in (
        "chart-logins",
        "chart-scores",
        "chart-reasons",
        "chart-step-up",
        "chart-networks",
        "chart-held",
    ):
        assert f'id="{chart}"' in html, chart
    assert html.count('role="img"') >= 6 and "<title" in html
    data = response.context["data"]
    assert data.totals["allow"] >= 30 and data.totals["bad_password"] == 2
    assert data.totals["step_up"] + data.totals["deny"] >= 3
    assert data.feedback == {"fraud": 3} and 'id="fraud-total">3<' in html
    assert data.networks[0].fraud >= 1 and data.networks[0].country in ("SG", "DE")
    assert 'id="riskiest-networks"' in html and "AS14061" in html
    assert "http://" not in html.split("<svg", 1)[1].replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.django_db
@pytest.mark.usefixtures("geoip")
def test_dashboard_figures_take_a_few_queries_whatever_the_volume():
    demo_data()
    span = reports.DateRange(*(reports.parse_range(RANGE).start, reports.parse_range(RANGE).end))
    with CaptureQueriesContext(connection) as small:
        reports.dashboard(span)
    build_history({"tanaka": "tanaka-demo-2025"}, now=NOW, days=10)
    with CaptureQueriesContext(connection) as large:
        reports.dashboard(span)
    assert len(small.captured_queries) == len(large.captured_queries) <= 10


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "yesterday"}, "must look like 2026-12-01"),
        ({"start": "2026-02-30"}, "must look like 2026-12-01"),
        ({"start": "2026-12-01", "end": "2026-11-01"}, "must not be after"),
        ({"start": "2020-01-01", "end": "2026-11-01"}, "at most 400 days"),
        ({"end": "x" * 5000}, "must look like 2026-12-01"),
    ],
)
@pytest.mark.django_db
def test_bad_dates_get_a_message_not_an_error(viewer, params, message):
    response = viewer.get(DASHBOARD, params)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["data"].range == reports.parse_range({})


@pytest.mark.django_db
def test_empty_range_draws_empty_charts(viewer):
    html = viewer.get(DASHBOARD, RANGE).content.decode()
    assert "No data in this range" in html


@pytest.mark.browser
@pytest.mark.usefixtures("geoip")
def test_dashboard_renders_in_chromium(live_server, transactional_db, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from demo_site.brokerage.management.commands.seed_demo import SECURITY_ADMIN_USERNAME

    demo_data()
    from authguard.conf import app_settings

    from .conftest import UA_CHROME_WIN

    # The desk's passkey-verified session, bound to this browser (its user agent and device cookie).
    desk = staff_client(
        __import__("django.contrib.auth", fromlist=["get_user_model"])
        .get_user_model()
        .objects.get(username=SECURITY_ADMIN_USERNAME),
        HTTP_USER_AGENT=UA_CHROME_WIN,
    )
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1800",
        f"--user-agent={UA_CHROME_WIN}",
    ):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(live_server.url + "/admin/login/")
        for name in (settings.SESSION_COOKIE_NAME, app_settings.DEVICE_COOKIE_NAME):
            driver.add_cookie({"name": name, "value": desk.cookies[name].value, "path": "/"})
        driver.get(f"{live_server.url}{DASHBOARD}?start={RANGE['start']}&end={RANGE['end']}")
        assert driver.title.startswith("Security dashboard")
        svgs = driver.find_elements(By.CSS_SELECTOR, "svg.authguard-chart")
        assert len(svgs) >= 6
        assert all(svg.size["width"] > 100 and svg.size["height"] > 20 for svg in svgs)
        bars = driver.find_elements(By.CSS_SELECTOR, "#chart-logins rect")
        assert len(bars) > 10  # legend plus one column segment per day and decision
        assert driver.find_element(By.ID, "riskiest-networks").text.count("AS") >= 1
        shot = tmp_path / "dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("AUTHGUARD_DOCS_SCREENSHOTS") == "1":
            DOCS_IMG.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, DOCS_IMG)
    finally:
        driver.quit()


# -- the charts themselves -------------------------------------------------------------------------------


def test_charts_escape_labels_and_are_labelled_for_screen_readers():
    from authguard.console import charts

    svg = str(
        charts.bar_chart("Top <networks>", [("<script>alert(1)</script>", 3), ('AS1 "x"', 1)], chart_id="c1")
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'role="img"' in svg and 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Top &lt;networks&gt;</title>' in svg
    assert "<desc" in svg and ": 3" in svg  # every figure is also in the text


def test_stacked_columns_stack_in_order_and_refuse_ragged_series():
    from authguard.console import charts

    svg = str(
        charts.stacked_columns(
            "Logins",
            ["11-01", "11-02"],
            [charts.Series("allowed", (3, 0), "#0a0"), charts.Series("denied", (1, 2), "#a00")],
            chart_id="c2",
        )
    )
    assert svg.count("<rect") == 2 + 3  # the legend's two swatches, and three non-zero segments
    assert "11-02: denied 2" in svg
    with pytest.raises(ValueError, match="has 1 values for 2 categories"):
        charts.stacked_columns("x", ["a", "b"], [charts.Series("s", (1,))], chart_id="c3")


def test_empty_and_rate_charts():
    from authguard.console import charts

    assert "Nothing" in str(charts.column_chart("Scores", [], chart_id="c4", empty="Nothing"))
    assert "62.5 %" in str(charts.rate_gauge("Step-up success", 0.625, chart_id="c5"))
    assert charts.nice_ceiling(9) == 10 and charts.nice_ceiling(31) == 50 and charts.nice_ceiling(0) == 1


@pytest.mark.django_db
def test_dashboard_after_simulate_attack(settings, tmp_path, viewer):
    """The demo as a visitor sees it: seed_demo, then simulate_attack, on the demo's own GeoIP data."""
    from django.core.management import call_command

    with open(os.devnull, "w") as quiet:
        call_command("build_demo_geoip", path=str(tmp_path), stdout=quiet)
        settings.AUTHGUARD_GEOIP_PATH = str(tmp_path)
        call_command("seed_demo", stdout=quiet)
        call_command("simulate_attack", stdout=quiet)
    response = viewer.get(DASHBOARD)  # the default range: the last 30 days
    assert response.status_code == 200
    data = response.context["data"]
    assert data.totals["deny"] >= 1  # the VPS in Singapore
    assert sum(data.held_orders.values()) >= 2  # the liquidation and the pivot, held then expired
    assert any(row.country == "SG" for row in data.networks)
    html = response.content.decode()
    assert 'id="chart-held"' in html and "No data in this range" not in html.split('id="chart-held"')[1][:400]
