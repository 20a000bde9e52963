"""Check: doctor's report, one line per check with its fix (``web.checks`` runs them),
after a line that says whether the unit itself runs (it stands for the hardware checks)."""

from __future__ import annotations

import bottle

from micromance.firstboot import firstboot_lines
from micromance.web.checks import run_in_child
from micromance.web.site import Site
from micromance.web.unit import facts


def routes(app: bottle.Bottle, site: Site) -> None:
    @app.get("/check")
    def check_page() -> str:
        config, _ = site.config()
        lines = [_unit_line(facts(config).running), *run_in_child(site.config_arg)]
        lines[1:1] = firstboot_lines(config.paths.state_dir)
        return site.render("check", title="Check", lines=lines,
                           failures=sum(line["outcome"] == "fail" for line in lines))


def _unit_line(running: bool) -> dict[str, str]:
    if running:
        return {"outcome": "pass", "symbol": "✓", "name": "unit", "fix": "",
                "message": "the unit is running: display, buttons and light are working "
                           "for it"}
    return {"outcome": "fail", "symbol": "✗", "name": "unit",
            "message": "the unit is not running",
            "fix": "sudo systemctl start micromance; if it does not stay up, run sudo "
                   "micromance doctor on the unit for the hardware checks"}
