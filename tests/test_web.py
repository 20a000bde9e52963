"""The web page: who may use it (home network, a code from the unit, sessions, CSRF), and
what its pages show and do, through the page's real WSGI application, a real control socket
(``FakeDaemon``, see test_web_daemon.py) and real files."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest

from micromance.web.app import make_app
from micromance.web.auth import (
    LOCKOUT_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    UNIT_CODE_SECONDS,
    Auth,
    LoginLocked,
)
from micromance.web.network import is_private
from micromance.web.site import Site
from micromance.web.web_state import WebStateFile
from tests.test_web_daemon import INVITE, Browser, FakeDaemon, make_unit


@pytest.fixture()
def unit(tmp_path, monkeypatch):
    return make_unit(tmp_path, monkeypatch)


# --- who may connect -------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.9", "172.31.255.1",
                                     "192.168.1.20", "169.254.10.10", "::1", "fd12:3456::1",
                                     "fe80::1%wlan0", "::ffff:192.168.1.20"])
def test_home_addresses_are_private(address):
    assert is_private(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "172.32.0.1", "100.64.0.1", "2001:db8::1",
                                     "::ffff:8.8.8.8", "", "not-an-address"])
def test_other_addresses_are_not(address):
    assert not is_private(address)


def test_a_request_from_outside_the_home_gets_403_and_nothing_else(unit):
    for path in ("/", "/login", "/static/style.css"):
        page = unit.browser(address="203.0.113.7").get(path)
        assert page.status == 403
        assert "home network" in page.body
        assert "set-cookie" not in page.headers
    outsider = unit.browser(address="2001:db8::5")
    page = outsider.request("POST", "/login", body="code=123456")
    assert page.status == 403
    assert "web.json" not in os.listdir(unit.state)  # not even a failed attempt was counted


def test_every_answer_carries_the_security_headers(unit):
    page = unit.browser().get("/login")
    assert page.status == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


# --- signing in ------------------------------------------------------------------------------


def test_pages_need_a_session_and_send_a_stranger_to_the_sign_in_page(unit):
    browser = unit.browser()
    for path in ("/", "/history", "/settings", "/connection", "/pairing", "/check"):
        page = browser.get(path)
        assert page.status == 303 and page.location == "/login", path
    assert browser.get("/pairing/state.json").status == 403


def test_a_code_shown_on_the_unit_signs_this_browser_in_once(unit):
    browser = unit.browser()
    with FakeDaemon(unit.state) as daemon:
        page = browser.post("/login/code")
        assert page.status == 200
        assert "on the unit's screen" in page.by_id("message")
        [(code, seconds)] = daemon.shown_codes
        assert seconds == UNIT_CODE_SECONDS and re.fullmatch(r"\d{6}", code)
        assert code not in page.body and code not in unit.web_json()  # only its hash is kept

        page = browser.post("/login", {"code": code[:3] + " " + code[3:]})  # spaces are fine
        assert page.status == 303 and page.location == "/"
        [session_line] = [c for c in page.cookies if c.startswith(SESSION_COOKIE)]
        assert "HttpOnly" in session_line and "SameSite=strict" in session_line
        assert "Path=/" in session_line
        token = browser.cookies[SESSION_COOKIE]
        assert token not in unit.web_json()  # a hash of it, not the token
        assert daemon.ops()[-1] == "hide_code"  # the code leaves the screen once used
        assert browser.get("/").status == 200

        stranger = unit.browser(address="192.168.1.77")
        again = stranger.post("/login", {"code": code})
        assert again.status == 200 and "Wrong code" in again.by_id("login-problem")
    assert (stat.S_IMODE((unit.state / "web.json").stat().st_mode)) == 0o600


def test_a_code_expires(unit):
    code = unit.auth.new_code("unit", UNIT_CODE_SECONDS)
    unit.clock.now += UNIT_CODE_SECONDS + 1
    page = unit.browser().post("/login", {"code": code})
    assert "Wrong code" in page.by_id("login-problem")


def test_without_a_running_unit_the_page_says_how_to_get_a_code(unit):
    page = unit.browser().post("/login/code")
    assert "micromance web --pin" in page.by_id("login-problem")
    assert json.loads(unit.web_json())["codes"]  # made, but nobody saw it: it just expires


def test_five_wrong_codes_lock_sign_ins_for_ten_minutes_even_across_a_restart(unit):
    code = unit.auth.new_code("shell", 600)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    browser = unit.browser()
    for tries_left in (4, 3, 2, 1):
        page = browser.post("/login", {"code": wrong})
        assert f"{tries_left} more tr" in page.by_id("login-problem")
    page = browser.post("/login", {"code": wrong})
    assert "locked for 10 more minutes" in page.by_id("login-problem")
    assert 'id="show-code" disabled' in page.body

    # The web process restarts: a fresh app on the same state directory.
    restarted = Site(str(unit.config), Auth(WebStateFile(unit.state), clock=unit.clock))
    again = Browser(make_app(restarted))
    page = again.post("/login", {"code": code})  # the right code, too late
    assert "locked" in page.by_id("login-problem") and SESSION_COOKIE not in again.cookies
    with pytest.raises(LoginLocked):
        restarted.auth.new_code("shell", 600)  # no new code either

    unit.clock.now += LOCKOUT_SECONDS + 1
    code = unit.auth.new_code("shell", 600)  # the old one went with the lockout
    assert again.post("/login", {"code": code}).location == "/"


def test_malformed_codes_are_not_counted_as_guesses(unit):
    browser = unit.browser()
    for typed in ("", "12345", "abcdef", "1234567"):
        page = browser.post("/login", {"code": typed})
        assert "Type the 6 digits" in page.by_id("login-problem")
    assert json.loads(unit.web_json())["failures"] == 0


def test_sessions_last_thirty_days(unit):
    browser = unit.signed_in()
    unit.clock.now += SESSION_SECONDS - 60
    assert browser.get("/history").status == 200
    unit.clock.now += 120
    assert browser.get("/history").location == "/login"


def test_sign_out_every_browser_revokes_all_sessions(unit):
    phone, laptop = unit.signed_in(), unit.signed_in(address="192.168.1.30")
    assert laptop.get("/").status == 200
    page = phone.post("/logout/all")
    assert page.location == "/login?note=signed-out"
    assert phone.get("/").location == "/login"
    assert laptop.get("/").location == "/login"
    assert json.loads(unit.web_json())["sessions"] == {}


def test_sign_out_ends_only_this_browser(unit):
    phone, laptop = unit.signed_in(), unit.signed_in(address="192.168.1.30")
    phone.post("/logout")
    assert phone.get("/").location == "/login"
    assert laptop.get("/").status == 200


# --- CSRF and origins ------------------------------------------------------------------------


def test_a_post_without_a_valid_token_or_from_another_origin_changes_nothing(unit):
    browser = unit.signed_in()
    with FakeDaemon(unit.state) as daemon:
        refusals = [
            browser.post("/thanks", csrf=""),                           # no token
            browser.post("/thanks", csrf="0" * 64),                     # a forged one
            browser.post("/thanks", Origin="http://evil.example"),      # good token, wrong site
            browser.post("/thanks", Origin="null"),
            browser.post("/thanks", Origin="http://unit.local:8080"),  # another port
        ]
        browser_without_origin = browser.post("/thanks", Origin="")
        assert [p.status for p in refusals] == [403] * len(refusals)
        assert browser_without_origin.status == 403  # an empty Origin is not this host
        token = browser.get("/").csrf()
        referer_only = browser.request("POST", "/thanks", body=f"csrf={token}",
                                       headers={"Referer": "http://evil.example/page"})
        assert referer_only.status == 403
        assert "press" not in daemon.ops()

        # Another browser's token is not this one's.
        other = unit.signed_in(address="192.168.1.30")
        assert other.post("/thanks", csrf=token).status == 403
        assert "press" not in daemon.ops()

        ok = browser.request("POST", "/thanks", body=f"csrf={token}",
                             headers={"Referer": "http://unit.local/"})
        assert ok.status == 303 and daemon.ops().count("press") == 1


def test_a_login_post_needs_its_token_too(unit):
    code = unit.auth.new_code("shell", 600)
    browser = unit.browser()
    page = browser.post("/login", {"code": code}, csrf="")
    assert page.status == 403 and SESSION_COOKIE not in browser.cookies
    assert browser.post("/login", {"code": code}).location == "/"  # the code was not spent


# --- Now -------------------------------------------------------------------------------------


def test_now_shows_the_gesture_the_counts_and_the_partner(unit):
    browser = unit.signed_in()
    with FakeDaemon(unit.state):
        page = browser.get("/")
    assert page.by_id("gesture") == "Ask about their day"
    assert "Be present" in page.body
    assert page.by_id("today") == "2 thank-yous both ways"
    assert page.by_id("totals") == "12 sent, 9 received"
    assert page.by_id("partner") == "Alex is online."
    assert page.by_id("pending").startswith("1 thank-you ")
    assert page.has_id("send-thanks") and not page.has_id("not-running")


def test_send_thanks_presses_thanks_on_the_unit_and_says_sent_or_queued(unit):
    browser = unit.signed_in()
    with FakeDaemon(unit.state) as daemon:
        page = browser.post("/thanks")
        assert page.status == 303 and page.location == "/?note=sent"
        assert browser.get(page.location).by_id("message") == "Sent."
        assert [r for r in daemon.requests if r["op"] == "press"] == [
            {"op": "press", "button": "thanks"}]

        daemon.status.update(partner="offline", away_since="2026-01-05T18:05:00+00:00")
        page = browser.post("/thanks")
        assert page.location == "/?note=queued"
        shown = browser.get(page.location)
        assert shown.by_id("message").startswith("Queued: the partner's unit is offline")
        assert shown.by_id("partner").startswith("Alex is away since ")


def test_without_the_daemon_now_shows_what_was_saved_and_sending_says_so(unit):
    browser = unit.signed_in()
    page = browser.get("/")
    assert page.status == 200 and page.has_id("not-running")
    assert page.by_id("totals") == "0 sent, 0 received"
    assert browser.post("/thanks").location == "/?note=not-running"


def test_a_note_is_one_of_the_pages_own_words(unit):
    browser = unit.signed_in()
    page = browser.get("/?note=<script>alert(1)</script>")
    assert "<script>alert" not in page.body and not page.has_id("message")


# --- History ---------------------------------------------------------------------------------


def test_history_draws_thirty_days_of_thank_yous_and_the_gestures_done(unit):
    from datetime import date, timedelta

    from micromance.core.counters import Counters
    from micromance.store import Store

    today = date.today()
    rows = ((today - timedelta(days=2)).isoformat(), 3, 1, 1), (today.isoformat(), 2, 4, 0)
    store = Store.open(unit.state)
    try:
        with store.transaction():
            store.save_counters(Counters(history=rows, streak=2, last_done_day=(
                today - timedelta(days=1)).isoformat()), "")
    finally:
        store.close()
    page = unit.signed_in().get("/history")
    assert page.status == 200
    chart = re.search(r'<svg[^>]*id="thanks-chart".*?</svg>', page.body, re.S).group(0)
    assert chart.count("<g>") == 30  # one slot per day, empty days too
    assert len(re.findall(r'<rect [^>]*class="s0"', chart)) == 2  # two days with sends
    assert len(re.findall(r'<rect [^>]*class="s1"', chart)) == 2
    assert f"{today.isoformat()}: 2 sent, 4 received" in chart
    assert page.by_id("history-sent") == "5" and page.by_id("history-received") == "5"
    assert page.by_id("history-done") == "1 in 30 days"
    assert page.by_id("streak").startswith("2 days")
    assert page.has_id("done-chart")


def test_history_without_a_store_is_an_empty_chart(unit):
    page = unit.signed_in().get("/history")
    assert page.status == 200 and page.has_id("thanks-chart")
    assert "<rect" not in page.body and page.by_id("history-sent") == "0"


# --- Pairing ---------------------------------------------------------------------------------


def test_pairing_invite_then_compare_and_confirm(unit):
    browser = unit.signed_in()
    with FakeDaemon(unit.state) as daemon:
        daemon.status["paired"] = False
        page = browser.get("/pairing")
        assert page.has_id("pair-invite") and page.has_id("pair-join")
        assert browser.post("/pairing/invite").location == "/pairing"
        page = browser.get("/pairing")
        assert page.by_id("invite-code") == INVITE
        assert 'src="/static/pairing.js"' in page.body  # it follows the phase by itself
        assert json.loads(browser.get("/pairing/state.json").body) == {"phase": "searching"}

        daemon.status["pairing"].update(phase="code", code="482913")
        page = browser.get("/pairing")
        assert page.by_id("comparison-code") == "482913"
        assert browser.post("/pairing/confirm").location == "/pairing"
        assert daemon.ops().count("confirm") == 1
        assert "waiting for the other unit to confirm" in browser.get("/pairing").body


def test_pairing_join_sends_the_code_and_cancel_cancels(unit):
    browser = unit.signed_in()
    with FakeDaemon(unit.state) as daemon:
        daemon.status["paired"] = False
        browser.post("/pairing/join", {"code": "  417 maple  river candle otter "})
        [pair] = [r for r in daemon.requests if r["op"] == "pair"]
        assert pair["mode"] == "join" and pair["code"] == INVITE
        page = browser.post("/pairing/cancel")
        assert page.location == "/pairing?note=cancelled"
        assert daemon.status["pairing"]["phase"] == "cancelled"


def test_forget_asks_first(unit):
    browser = unit.signed_in()
    with FakeDaemon(unit.state) as daemon:
        page = browser.get("/pairing")
        assert page.by_id("paired") == "Paired with Alex." and page.has_id("forget")
        asked = browser.post("/pairing/forget")
        assert asked.location == "/pairing?forget=ask" and "forget" not in daemon.ops()
        page = browser.get(asked.location)
        assert page.has_id("forget-confirm") and page.has_id("forget-keep")
        done = browser.post("/pairing/forget", {"confirm": "yes"})
        assert done.location == "/pairing?note=forgotten" and "forget" in daemon.ops()
        assert browser.get(done.location).has_id("pair-invite")


def test_pairing_without_the_daemon_says_it_needs_the_unit(unit):
    browser = unit.signed_in()
    assert "not running" in browser.get("/pairing").by_id("not-running")
    page = browser.post("/pairing/invite")
    assert "not running" in page.by_id("pairing-problem")


# --- Check -----------------------------------------------------------------------------------


def test_check_shows_doctors_lines_with_their_fixes(unit):
    page = unit.signed_in().get("/check")
    assert page.status == 200
    assert page.by_id("check-config").startswith("✓") and str(unit.config) in page.body
    broker = page.by_id("check-broker")
    assert "refused the connection" in broker and "Fix:" in broker
    assert "the unit is not running" in page.by_id("check-unit")
    for name in ("clock", "pairing", "wifi"):
        assert page.has_id(f"check-{name}"), name


# --- no secret on any page -------------------------------------------------------------------


def test_no_page_shows_a_secret(unit):
    from micromance.link.pair_file import pair_locally

    pair, _ = pair_locally(unit.state, unit.state.parent / "partner")
    browser = unit.signed_in()
    token = browser.cookies[SESSION_COOKIE]
    key = json.loads(unit.web_json())["key"]
    with FakeDaemon(unit.state):
        pages = [browser.get(p) for p in ("/", "/history", "/settings", "/connection",
                                          "/pairing", "/check")]
    for page in pages:
        assert page.status == 200
        for secret in (token, key, pair.key.hex()):
            assert secret not in page.body
