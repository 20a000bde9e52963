"""Now (today's gesture, the counts, the partner, the big "Send thanks") and History (the
last 30 days as a chart)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bottle

from micromance.config import Config
from micromance.control.client import ControlError
from micromance.core.counters import HISTORY_DAYS
from micromance.web import history_svg
from micromance.web.site import Site, log
from micromance.web.unit import daemon, facts, history

PRACTICE_LABELS = {"present": "Be present", "reinforce": "Reinforce the good",
                   "closeness": "Small gestures", "delight": "Surprise & delight",
                   "calm": "Calm in conflict", "affirm": "Affirmation",
                   "attune": "Attunement"}


def routes(app: bottle.Bottle, site: Site) -> None:
    @app.get("/")
    def now_page() -> str:
        config, _ = site.config()
        known = facts(config)
        status = known.status
        prompt = status.get("prompt") or {}
        practice = str(prompt.get("practice", ""))
        return site.render(
            "now", title="Now", running=known.running, problem=known.problem, status=status,
            gesture=str(prompt.get("text", "")),
            practice=PRACTICE_LABELS.get(practice.lower(), practice),
            partner=_partner_words(status, site.now()))

    @app.post("/thanks")
    def send_thanks() -> None:
        config, _ = site.config()
        bottle.redirect(f"/?note={_press_thanks(config)}", 303)

    @app.get("/history")
    def history_page() -> str:
        config, _ = site.config()
        today = site.now().date()
        numbers = history(config, today)
        thanks = history_svg.last_days(numbers.thanks, today, HISTORY_DAYS)
        done = history_svg.last_days(numbers.done, today, HISTORY_DAYS)
        return site.render(
            "history", title="History", streak=numbers.streak,
            thanks_chart=history_svg.bar_chart(thanks, numbers.series,
                                               "Thank-yous per day, last 30 days", "thanks-chart"),
            legend=history_svg.legend(numbers.series),
            sent=sum(d.counts[0] for d in thanks) if len(numbers.series) > 1 else None,
            received=sum(d.counts[1] for d in thanks if len(d.counts) > 1)
            if len(numbers.series) > 1 else None,
            both=sum(sum(d.counts) for d in thanks),
            done_chart=history_svg.bar_chart(done, ("done",), "Gestures done per day",
                                              "done-chart")
            if numbers.done else "",
            done_total=sum(sum(d.counts) for d in done))


def _press_thanks(config: Config) -> str:
    """Press THANKS through the daemon; the note for the page: sent, queued or not-running."""
    try:
        client = daemon(config)
        if client is None:
            return "not-running"
        with client:
            client.press("thanks")
            status = client.status()
    except ControlError as error:
        log.warning("THANKS not pressed: %s", error)
        return "not-running"
    online = status.get("link") == "connected" and status.get("partner") == "online"
    return "sent" if online else "queued"


def _partner_words(status: dict[str, Any], now: datetime) -> str:
    name = status.get("partner_name") or "Your partner"
    if not status.get("paired"):
        return "Not paired yet."
    if status.get("partner") == "online":
        return f"{name} is online."
    since = status.get("away_since")
    if since:
        try:
            moment = datetime.fromisoformat(str(since))
            local = moment.astimezone() if moment.tzinfo else moment
            today = now.date() == local.date()
            return f"{name} is away since {local:%H:%M}" + ("." if today else
                                                             f", {local:%d %b}.")
        except ValueError:
            pass
    return f"{name} is away." if status.get("partner") == "offline" else \
        f"Not known whether {name} is online."
