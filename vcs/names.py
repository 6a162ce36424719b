"""Vietnamese names folded for search, so "Hoan Kiem" finds "Phường Hoàn Kiếm"."""

from __future__ import annotations

import unicodedata

__all__ = ["fold"]

# đ/Đ are letters of their own, not d plus a combining mark, so NFD leaves them alone
_LETTERS = str.maketrans({"đ": "d", "Đ": "d"})


def fold(text: str) -> str:
    """Lowercase, without diacritics, with runs of whitespace collapsed."""
    decomposed = unicodedata.normalize("NFD", text.translate(_LETTERS))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.lower().split())
