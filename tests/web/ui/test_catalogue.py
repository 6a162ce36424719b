"""The Vietnamese catalogue: every message the UI can show has a translation, found with Babel's extractors."""

import ast
import gettext
import re
from pathlib import Path

import jinja2.ext
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from vcs.errors import REASONS, FieldError
from web.ui import i18n

ROOT = Path(i18n.__file__).resolve().parents[2]
PO = i18n.LOCALE_DIR / "vi" / "LC_MESSAGES" / "messages.po"
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def _ids(found) -> set[str]:
    return {message for _line, message, _comments, _context in found if isinstance(message, str) and message}


def extracted_msgids() -> set[str]:
    """What `pybabel extract` would find: `_()` and `gettext()` in templates, `N_()` in the UI's and the errors' Python."""
    ids = set()
    for path in (ROOT / "web" / "templates").rglob("*.html"):
        ids |= _ids(extract_from_file(jinja2.ext.babel_extract, path, keywords={"_": None, "gettext": None}, options=JINJA_OPTIONS))
    for path in [*(ROOT / "web" / "ui").glob("*.py"), ROOT / "vcs" / "errors.py"]:
        ids |= _ids(extract_from_file("python", path, keywords={"N_": None}))
    return ids


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)[^}]*}", text))


def test_every_message_has_a_vietnamese_translation():
    with PO.open("rb") as source:
        catalogue = read_po(source)
    translated = {m.id: m.string for m in catalogue if m.id and m.string and not m.fuzzy}
    msgids = extracted_msgids()
    assert len(msgids) > 300 and set(REASONS.values()) <= msgids and "Communes online" in msgids and "Administrator" in msgids
    assert sorted(msgids - translated.keys()) == []
    for msgid, text in translated.items():  # placeholders survive translation
        assert _placeholders(msgid) == _placeholders(text), msgid


def test_every_reason_code_raised_is_in_the_table():
    used = set()
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "of":
                if isinstance(node.func.value, ast.Name) and node.func.value.id == "FieldError" and len(node.args) > 1:
                    code = node.args[1]
                    if isinstance(code, ast.Constant):
                        used.add(code.value)
    assert len(used) > 20 and sorted(used - REASONS.keys()) == []


def test_vietnamese_reasons_come_from_codes():
    assert i18n.reason("vi", FieldError.of("down_kbps", "between", low=1, high=10000000)) == "phải nằm trong khoảng từ 1 đến 10000000"
    assert i18n.gettext("vi", "Line {line}", line=7) == "Dòng 7"
    row = FieldError.of("loss_pct", "number").at_line(7)
    assert (row.field, row.reason, row.params) == ("line 7", "loss_pct must be a number", {"line": 7, "column": "loss_pct"})
    assert i18n.reason("vi", row) == "loss_pct: phải là số"
    assert i18n.reason("en", FieldError.of("x", "number")) == "must be a number"
    assert i18n.reason("vi", FieldError("x", "something new")) == "something new"
    assert i18n.label("vi", "role", "ops") == "Vận hành" and i18n.label("en", "action", "meeting.unknown") == "meeting.unknown"


def test_the_catalogue_compiles_to_a_mo_file(tmp_path):
    mo = tmp_path / "messages.mo"
    i18n._compile(PO, mo)
    with mo.open("rb") as compiled:
        assert gettext.GNUTranslations(compiled).gettext("Sign out") == "Đăng xuất"
