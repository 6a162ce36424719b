"""Link profile CSV as office spreadsheets save it: encodings, separators, the byte-order mark."""

import codecs
import unicodedata

import pytest

from vcs.endpoints import Endpoint, national_endpoints
from vcs.errors import ValidationFailed
from vcs.link_csv import decode_csv, export_csv, parse_csv

HEADER = "id,name,province_code,access,down_kbps,up_kbps,rtt_ms,loss_pct\n"
ROW = "00004,Phường Ba Đình,01,4g,9000,2500,70,1.5\n"


def windows_1258(text: str) -> bytes:
    """As Windows writes Vietnamese: base letters precomposed where cp1258 has them (ư, ơ, â, ê), tones combining."""
    out = []
    for char in unicodedata.normalize("NFC", text):
        base, *marks = unicodedata.normalize("NFD", char)
        for mark in list(marks):
            composed = unicodedata.normalize("NFC", base + mark)
            if len(composed) == 1 and composed.encode("cp1258", errors="ignore"):
                base = composed
                marks.remove(mark)
        out.append(base + "".join(marks))
    return "".join(out).encode("cp1258")


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: text.encode("utf-16"),  # Excel's "Unicode text": a BOM, then UTF-16 LE
        lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        windows_1258,  # Excel "CSV" on a Vietnamese Windows
    ],
    ids=["utf-8", "utf-8 with BOM", "utf-16", "utf-16 big-endian", "windows-1258"],
)
def test_office_encodings_read_as_the_same_text(encode):
    data = encode(HEADER + ROW)
    text = decode_csv(data)
    assert text.lstrip("\ufeff") == HEADER + ROW  # NFC, as the registry spells names
    [(endpoint_id, profile)] = parse_csv(text, {"00004"})
    assert endpoint_id == "00004" and profile.down_kbps == 9000 and profile.loss_pct == 1.5


@pytest.mark.parametrize(
    "data",
    [
        b"id,access\n\x81\x8a\x8d\x8e\n",  # bytes no code page here defines
        "id,access\n".encode("utf-16-le"),  # UTF-16 without its mark
    ],
    ids=["undefined bytes", "utf-16 without BOM"],
)
def test_unknown_encoding_says_which_it_needs(data):
    with pytest.raises(ValidationFailed) as failed:
        decode_csv(data)
    assert "UTF-8" in failed.value.errors[0].reason and "Windows-1258" in failed.value.errors[0].reason


@pytest.mark.parametrize("separator", [";", "\t"])
def test_semicolon_and_tab_separated_files(separator):
    text = (HEADER + ROW).replace(",", separator)
    [(endpoint_id, profile)] = parse_csv(text, {"00004"})
    assert endpoint_id == "00004" and profile.rtt_ms == 70


def test_export_starts_with_a_bom_and_reads_back():
    endpoints: list[Endpoint] = [e for e in national_endpoints() if e.province_code == "01"][:3]
    text = export_csv(endpoints)
    assert text.startswith("\ufeffid,name,")
    assert "Phường" in text or "Xã" in text
    rows = parse_csv(decode_csv(text.encode("utf-8")), {e.id for e in endpoints})
    assert [r[0] for r in rows] == [e.id for e in endpoints]


@pytest.mark.parametrize(
    "text",
    ["\r\x01", 'id,access\n"00004,4g\n', HEADER + "00004,\"Ba\rĐình\" x,01,4g,9000,2500,70,1.5\n\"", "x" * 200_000],
    ids=["stray carriage return", "unterminated quote", "quote then text", "one huge field"],
)
def test_text_that_is_not_csv_is_refused_with_a_reason(text):
    with pytest.raises(ValidationFailed) as failed:
        parse_csv(text, {"00004"})
    assert failed.value.errors and failed.value.errors[0].field.startswith("line ")


def test_carriage_returns_alone_end_lines():
    [(endpoint_id, _)] = parse_csv((HEADER + ROW).replace("\n", "\r"), {"00004"})
    assert endpoint_id == "00004"
