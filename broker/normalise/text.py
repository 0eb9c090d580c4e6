"""Text cleaning: publisher descriptions carry HTML, entities, ``\\r\\n`` and control characters.

The output is plain text. It is never treated as markup later: templates escape it again.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5",
                         "h6", "section", "article", "blockquote", "pre", "hr"})
_SKIP_TAGS = frozenset({"script", "style"})
# C0 and C1 controls except tab and newline (the real CF export holds stray \x8f bytes).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_TAG_HINT = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
_KEY_DROP = re.compile(r"[^0-9a-z]+")
# Line breaks some publishers (or the tools between them and us) escape twice: the text holds a
# backslash and a letter ("\\r\\n"), or, with the backslashes lost, the bare letters "rn". Bare letters
# are read as a break only where no English word can have them: a run of two or more ("rnrn"), a
# lower-case "rn" standing alone, or one glued after a sentence's end before its next start.
_ESCAPED_BREAK = re.compile(r"\\r\\n|\\n|\\r")
_ESCAPED_TAB = re.compile(r"\\t")
_BARE_BREAKS = re.compile(r"(?:rn){2,}|(?<![^\s])rn(?![^\s])|(?<=[.:;!?)])rn(?=[\sA-Z0-9\u2022\u00e2(]|$)")


class _Stripper(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def clean_text(value: object) -> str:
    """Plain, tidy text from publisher text: tags removed, entities decoded, newlines normalised."""
    if value is None:
        return ""
    text = decode_breaks(str(value)).replace("\r\n", "\n").replace("\r", "\n")
    if _TAG_HINT.search(text):
        stripper = _Stripper()
        stripper.feed(text)
        stripper.close()
        text = "".join(stripper.parts)
    else:
        text = html.unescape(text)
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def decode_breaks(text: str) -> str:
    """Escaped line breaks (``\\r\\n`` as text, or its bare letters ``rn rn``) as real ones."""
    if "rn" not in text and "\\" not in text:
        return text
    text = _ESCAPED_TAB.sub(" ", _ESCAPED_BREAK.sub("\n", text))
    return _BARE_BREAKS.sub(lambda m: "\n" * max(1, len(m.group()) // 2), text)


def one_line(value: object) -> str:
    """Cleaned text on a single line (titles, names)."""
    return " ".join(clean_text(value).split())


def match_key(value: object) -> str:
    """A loose key for de-duplication: lower case, letters and digits only, single spaces."""
    folded = unicodedata.normalize("NFKD", one_line(value)).encode("ascii", "ignore").decode().lower()
    return " ".join(_KEY_DROP.sub(" ", folded).split())


def split_list(text: str, separators: re.Pattern[str]) -> list[str]:
    """Split a list cell (CPV codes, keywords), cleaning each part; empty parts are dropped."""
    return [t for t in (one_line(part) for part in separators.split(text)) if t]
