"""Make student content in a graded notebook inert for the instructor's browser.

formgrader renders the autograded notebook with nbconvert: an HTML or
JavaScript output, raw HTML in a markdown or raw cell, or a ``javascript:``
link would run in the instructor's logged-in Jupyter page, whose contents
and terminals APIs execute code. So the graded notebook keeps only:

* outputs: text streams, ``text/plain`` results, and PNG/JPEG images whose
  data really is base64 of such a file; no other MIME type, no output
  metadata, no transient data;
* student-written markdown: its formatting, but no raw HTML (a ``<`` that
  would open a tag and ``&`` that would start an entity are escaped) and no
  link whose scheme is not http, https or mailto;
* student-written raw cells: as escaped text.
"""

import base64
import binascii
import re

import nbformat

SAFE_MIMES = ("text/plain", "image/png", "image/jpeg")
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
_SAFE_SCHEMES = ("http", "https", "mailto")

# "<" followed by a letter, "/", "!" or "?" opens a tag, comment or declaration in HTML.
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
# "&#106;" or "&lt;" would be decoded into a character the checks above did not see.
_ENTITY = re.compile(r"&(?=#|[A-Za-z][A-Za-z0-9]*;)")
# Link destinations: inline [text](dest), and reference definitions [id]: dest.
_INLINE_LINK = re.compile(r"(\]\(\s*)([^\s)]*)")
_REFERENCE_LINK = re.compile(r"(^[ \t]{0,3}\[[^\]\n]*\]:[ \t]*)(\S*)", re.MULTILINE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f\\]")  # browsers drop these inside a scheme; markdown drops "\"


def inert_markdown(source):
    """Student markdown that renders as formatted text only: no HTML, no script links."""
    text = source if isinstance(source, str) else ""
    text = _ENTITY.sub("&amp;", text)
    text = _TAG_OPEN.sub("&lt;", text)
    text = _INLINE_LINK.sub(_safe_destination, text)
    return _REFERENCE_LINK.sub(_safe_destination, text)


def inert_raw(source):
    """A raw cell's text, escaped: nbconvert pastes raw cells into its HTML as they are."""
    text = source if isinstance(source, str) else ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _safe_destination(match):
    prefix, dest = match.group(1), match.group(2)
    scheme = _SCHEME.match(_INVISIBLE.sub("", dest))
    if scheme and scheme.group(1).lower() not in _SAFE_SCHEMES:
        return prefix + "#"
    return prefix + dest


def inert_output(out):
    """A copy of one output that no browser can execute, or None if nothing safe is left."""
    kind = out.get("output_type")
    if kind == "stream":
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name, text=_text(out.get("text")))
    if kind == "error":
        return nbformat.v4.new_output(
            "error",
            ename=_text(out.get("ename")),
            evalue=_text(out.get("evalue")),
            traceback=[_text(line) for line in out.get("traceback") or [] if isinstance(line, str)],
        )
    if kind not in ("display_data", "execute_result"):
        return None
    raw = out.get("data") if isinstance(out.get("data"), dict) else {}
    data = {mime: _text(raw[mime]) for mime in SAFE_MIMES if mime in raw and _valid(mime, raw[mime])}
    if not data:
        return None
    if kind == "display_data":
        return nbformat.v4.new_output("display_data", data=data)
    count = out.get("execution_count")
    return nbformat.v4.new_output("execute_result", data=data, execution_count=count if type(count) is int else None)


def _text(value):
    """Output text as one string (nbformat also allows a list of lines)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return ""


def _valid(mime, value):
    if mime == "text/plain":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    text = _text(value)
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw.startswith(_MAGIC[mime])
