"""Settings: the name, quiet hours, how often a new gesture comes, which practices, one's own
prompts, and the display's brightness. Form fields are named like the config keys."""

from __future__ import annotations

from typing import Any

import bottle

from micromance.config import PRACTICES, Config
from micromance.errors import ConfigError
from micromance.web.pages.now import PRACTICE_LABELS
from micromance.web.pages.saving import Saved, refused, reload_unit, save_config
from micromance.web.settings_file import prompts_path, write_safely
from micromance.web.site import Site

#: The whole-number keys of the form.
NUMBERS = ("prompts.interval_minutes", "display.contrast", "display.dim_contrast",
           "display.dim_after_minutes")
TEXTS = ("device.name", "quiet_hours.start", "quiet_hours.end")
PROMPTS_EXAMPLE = """# Your own gestures, shown among the shipped ones.
# practice: present, reinforce, closeness, delight, calm, affirm or attune
# when (optional): "morning", "evening", "weekend"

[[prompt]]
practice = "delight"
text = "Leave a note where they will find it"
"""


def routes(app: bottle.Bottle, site: Site) -> None:
    @app.get("/settings")
    def settings_page() -> str:
        config, _ = site.config()
        return _page(site, config, _values_of(config), Saved())

    @app.post("/settings")
    def save_settings() -> str:
        config, _ = site.config()
        values, errors = _values_from_form(bottle.request.forms)
        if errors:
            return _page(site, config, {**_values_of(config), **values}, Saved(errors=errors))
        text = site.settings_file().with_values(values, config)
        saved = save_config(site, text)
        config, _ = site.config()
        shown = {**_values_of(config), **values} if saved.refused else _values_of(config)
        return _page(site, config, shown, saved)

    @app.post("/settings/prompts")
    def save_prompts() -> str:
        config, _ = site.config()
        text = (bottle.request.forms.getunicode("prompts_text") or "").replace("\r\n", "\n")
        path = prompts_path(config, site.config_path)
        settings = site.settings_file()
        try:
            settings.check_prompts(text, path)
            write_safely(path, text, site.now())
        except ConfigError as error:
            beside = Saved(errors={"prompts.extra_file": refused(error).errors[error.key]})
            return _page(site, config, _values_of(config), beside, prompts_text=text)
        if config.prompts.extra_file:
            saved = reload_unit(site)
        else:
            saved = save_config(site, settings.with_values(
                {"prompts.extra_file": str(path)}, config))
        config, _ = site.config()
        return _page(site, config, _values_of(config), saved)


def _values_of(config: Config) -> dict[str, Any]:
    return {
        "device.name": config.device.name,
        "quiet_hours.enabled": config.quiet_hours.enabled,
        "quiet_hours.start": config.quiet_hours.start,
        "quiet_hours.end": config.quiet_hours.end,
        "prompts.interval_minutes": config.prompts.interval_minutes,
        "prompts.disabled_practices": tuple(config.prompts.disabled_practices),
        "display.contrast": config.display.contrast,
        "display.dim_contrast": config.display.dim_contrast,
        "display.dim_after_minutes": config.display.dim_after_minutes,
    }


def _values_from_form(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The typed values, and an error per field that is not even the right kind."""
    values: dict[str, Any] = {key: (form.getunicode(key) or "").strip() for key in TEXTS}
    errors: dict[str, str] = {}
    for key in NUMBERS:
        raw = (form.getunicode(key) or "").strip()
        try:
            values[key] = int(raw)
        except ValueError:
            values[key] = raw
            errors[key] = f'{key}: "{raw}" is not a whole number'
    values["quiet_hours.enabled"] = form.getunicode("quiet_hours.enabled") == "true"
    on = set(form.getall("practice"))
    values["prompts.disabled_practices"] = tuple(p for p in PRACTICES if p not in on)
    return values, errors


def _page(site: Site, config: Config, values: dict[str, Any], saved: Saved,
          prompts_text: str | None = None) -> str:
    path = prompts_path(config, site.config_path)
    if prompts_text is None:
        try:
            prompts_text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            prompts_text = PROMPTS_EXAMPLE
        except (OSError, UnicodeDecodeError) as error:
            prompts_text = f"# cannot read {path}: {error}\n"
    return site.render("settings", title="Settings", values=values, saved=saved,
                       errors=saved.errors, practices=[(p, PRACTICE_LABELS[p])
                                                       for p in PRACTICES],
                       prompts_text=prompts_text, prompts_path=str(path),
                       config_path=str(site.config_path))
