"""Vietnamese (the default) and English for the UI: gettext catalogues.

Message ids are the English text. The Vietnamese is in
`web/locale/vi/LC_MESSAGES/messages.po`, compiled to a `.mo` beside it the first
time it is needed when the `.mo` is missing or older (the `.mo` is not kept in
the repository). Templates call `_("Sign in")` (with `{name}` placeholders
filled from keyword arguments; `jinja2.ext.i18n` is loaded for `{% trans %}`);
Python code marks the ids it hands to templates with `N_()`, so Babel's
extractor finds every id and a test checks each has a Vietnamese translation.
`label(group, value)` names roles, access types, endpoint kinds and audit
actions; `reason(error)` translates a `FieldError` by its code and params.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import io
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from vcs.errors import N_, REASONS, FieldError

__all__ = ["ACTION_LABELS", "COOKIE", "DEFAULT", "LANGUAGES", "LOCALE_DIR", "N_", "catalogue", "gettext", "label", "reason", "resolve"]

LANGUAGES = ("vi", "en")
DEFAULT = "vi"
COOKIE = "vcs_lang"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"


def resolve(raw: str | None) -> str:
    return raw if raw in LANGUAGES else DEFAULT


def _compile(po: Path, mo: Path) -> bytes:
    """The .po as .mo bytes, also written to `mo` when its folder is writable (atomically: servers may race)."""
    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parent.parent.name)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    data = buffer.getvalue()
    try:
        fd, tmp = tempfile.mkstemp(dir=mo.parent, prefix=".messages-", suffix=".mo")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, mo)
    except OSError:
        pass  # a read-only install: the compiled bytes are used from memory
    return data


@functools.cache
def catalogue(lang: str) -> _gettext.NullTranslations:
    """The language's translations; English, the msgid language, needs none."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return _gettext.NullTranslations()
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        data = mo.read_bytes()
    else:
        data = _compile(po, mo)
    return _gettext.GNUTranslations(io.BytesIO(data))


def gettext(lang: str, msgid: str, **params: object) -> str:
    text = catalogue(lang).gettext(msgid) if msgid else msgid
    return text.format(**params) if params else text


# audit action => English label; actions not listed are shown by their name
ACTION_LABELS: dict[str, str] = {
    "auth.login": N_("Signed in"),
    "auth.login_failed": N_("Failed sign-in"),
    "auth.logout": N_("Signed out"),
    "endpoint.link_edit": N_("Link profile edited"),
    "endpoint.csv_import": N_("CSV import"),
    "endpoint.secret_rotate": N_("Secret rotated"),
    "token.create": N_("API token created"),
    "user.add": N_("User added"),
    "user.disable": N_("User disabled"),
    "user.enable": N_("User enabled"),
    "user.password": N_("Password changed"),
    "meeting.book": N_("Meeting booked"),
    "meeting.change": N_("Meeting changed"),
    "meeting.cancel": N_("Meeting cancelled"),
    "meeting.floor": N_("Floor given"),
    "meeting.host": N_("Host broadcast started"),
    "endpoint.contact_edit": N_("IT contact edited"),
    "endpoint.contacts_import": N_("IT contacts imported"),
    "readiness.run": N_("Readiness test re-run"),
    "drill.start": N_("Drill started"),
}

LABELS: dict[str, dict[str, str]] = {
    "role": {"admin": N_("Administrator"), "organizer": N_("Organizer"), "ops": N_("Operations"), "viewer": N_("Viewer")},
    "access": {"gov_fiber": N_("Government network (TSLCD)"), "internet_fiber": N_("Internet fibre"), "4g": N_("4G"), "satellite": N_("Satellite")},
    "kind": {"central": N_("Central"), "hall": N_("Province hall"), "commune": N_("Commune/ward")},
    "meeting_status": {
        "upcoming": N_("Upcoming"),
        "live": N_("Live"),
        "scheduled": N_("Scheduled"),
        "preparing": N_("Preparing"),
        "ended": N_("Ended"),
        "cancelled": N_("Cancelled"),
        "failed": N_("Failed"),
    },
    "tier": {"720p": N_("720p (HD)"), "360p": N_("360p"), "180p": N_("180p"), "audio": N_("Audio only"), "none": N_("Cannot receive"), "unknown": N_("Not reported")},
    "shortfall": {"link": N_("Commune link"), "trunk": N_("Province trunk"), "node": N_("SFU node")},
    "action": ACTION_LABELS,
}


def label(lang: str, group: str, value: object) -> str:
    key = str(value.value if hasattr(value, "value") else value)
    msgid = LABELS.get(group, {}).get(key)
    return gettext(lang, msgid) if msgid else key


def reason(lang: str, error: FieldError) -> str:
    """What is wrong with one input, in `lang`: by the error's code; a reason without a known code as written."""
    if error.code not in REASONS:
        return error.reason
    text = gettext(lang, REASONS[error.code], **error.params)
    column = error.params.get("column")
    return f"{column}: {text}" if column else text
