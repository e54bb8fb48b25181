"""Student-controlled text, made safe for where a person sees it.

File names, symbolic-link targets, zip folder names and exception text come
from students. Printed raw, a terminal obeys the control sequences in them
(clear the screen, set the title, write the clipboard with OSC 52) and bidi
overrides reorder what the instructor reads. ``for_terminal`` shows every
such character as a visible escape and caps the length. (HTML pages escape
separately, with ``html.escape``.)
"""

import re
import unicodedata

TERMINAL_LIMIT = 300

# C0 controls (ESC included), DEL, C1 controls (0x9b is a one-byte CSI), and the
# invisible characters that reorder or hide text: bidi marks, embeddings, overrides
# and isolates, zero-width characters, line/paragraph separators, BOM, lone surrogates
# (undecodable file names) and any other format character.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]")
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _escape(ch):
    o = ord(ch)
    if o < 0x100:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def for_terminal(text, limit=TERMINAL_LIMIT):
    """``text`` as one inert line for a terminal: controls escaped, at most ``limit`` characters."""
    s = str(text)[: limit + 1]  # escaping only lengthens: the rest could never be shown
    s = _UNSAFE.sub(lambda m: _escape(m.group()), s)
    if not s.isascii():
        s = "".join(_escape(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in s)
    return s if len(s) <= limit else s[: limit - 1] + "…"
