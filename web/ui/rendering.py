"""Rendering pages with the common layout, in the visitor's language.

`render(request, "x.html", {...}, section="endpoints")` gives every template
the layout's needs: `_` (translate), `me` (the signed-in user or None), the
visible navigation, `csrf_input` (the hidden field every form must carry), the
flash message, and the formatting helpers. Templates extend "base.html" and
fill `{% block content %}`; Jinja2 autoescaping is on for everything.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from web.ui import csrf, formats, i18n
from web.ui.nav import visible

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "build_templates", "language", "render"]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

def build_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template, whatever its name: nothing a user typed is rendered raw
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # each render passes its language's `_`/`gettext` in the context; these are the fallback
    env.install_gettext_translations(i18n.catalogue(i18n.DEFAULT), newstyle=False)  # type: ignore[attr-defined]
    env.globals.update(
        format_datetime=formats.format_datetime,
        format_date=formats.format_date,
        format_time=formats.format_time,
        iso_utc=formats.iso_utc,
    )
    env.filters["compact_json"] = _compact_json
    return Jinja2Templates(env=env)


def _compact_json(value: object) -> str:
    """Audit details and the like, readable (Vietnamese letters kept); autoescaped like any string."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def language(request: Request) -> str:
    return i18n.resolve(request.cookies.get(i18n.COOKIE))


def _context(request: Request, section: str) -> dict[str, Any]:
    lang = language(request)
    me = request.scope.get("vcs.ui.me")
    flash = None
    if me is not None and me.session.flash:
        raw = me.session.flash
        flash = {"kind": raw.get("kind", "success"), "text": i18n.gettext(lang, raw.get("message", ""), **raw.get("params", {}))}
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "request": request,
        "lang": lang,
        "_": partial(i18n.gettext, lang),
        "gettext": partial(i18n.gettext, lang),
        "label": partial(i18n.label, lang),
        "reason": partial(i18n.reason, lang),
        "format_int": partial(formats.format_int, lang=lang),
        "format_decimal": partial(formats.format_decimal, lang=lang),
        "format_percent": partial(formats.format_percent, lang=lang),
        "me": me,
        "nav": visible(me.user.role) if me is not None else [],
        "section": section,
        "current_path": path,
        "csrf_input": csrf.hidden_input(request),
        "flash": flash,
    }


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    section: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    full = _context(request, section)
    full.update(context or {})
    response = templates.TemplateResponse(request, name, full, status_code=status, headers=headers)
    csrf.attach_cookie(request, response)
    return response
