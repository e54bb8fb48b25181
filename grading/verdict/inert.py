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
  link or image (``[`` and ``]`` are escaped, outside math);
* student-written raw cells: as escaped text.
"""

import base64
import binascii
import functools
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
# (After _escape_brackets, so "[" and "]" may be written &#91; and &#93;: the text is neutralised too.)
_INLINE_LINK = re.compile(r"((?:\]|&#93;)\(\s*)([^\s)]*)")
_REFERENCE_LINK = re.compile(r"(^[ \t]{0,3}(?:\[|&#91;)(?:(?!\]|&#93;).)*(?:\]|&#93;):[ \t]*)(\S*)", re.MULTILINE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_BRACKETS = str.maketrans({"[": "&#91;", "]": "&#93;"})
_MATH = re.compile(r"(\$\$.+?\$\$|\$[^$\n]+?\$)", re.DOTALL)
_INVISIBLE = re.compile(r"[\x00-\x20\x7f\\]")  # browsers drop these inside a scheme; markdown drops "\"


# The week's own cells are a few KB; a longer text is the student's own and is not kept:
# a worker grades many submissions, and each may hold 100 MB of markdown.
_CACHED_CHARS = 64 * 1024


def inert_markdown(source):
    """Student markdown that renders as formatted text only: no HTML, no links at all."""
    text = source if isinstance(source, str) else ""
    return _inert_markdown(text) if len(text) <= _CACHED_CHARS else _inert_markdown.__wrapped__(text)


@functools.lru_cache(maxsize=2048)
def _inert_markdown(text):
    """Cached: most markdown cells are the week's own text, the same in every submission, and
    the check for links runs nbconvert's markdown parser."""
    text = _ENTITY.sub("&amp;", text)
    text = _TAG_OPEN.sub("&lt;", text)
    text = _escape_brackets(text)
    text = _INLINE_LINK.sub(_safe_destination, text)
    return _REFERENCE_LINK.sub(_safe_destination, text)


def _escape_brackets(text):
    """``[`` and ``]`` as character references, so no link, image or reference definition can form.

    Markdown's link syntax has too many forms (reference definitions in quotes, lists,
    over two lines...) to filter destinations; without brackets there is none. Brackets
    inside ``$...$`` math are kept for MathJax (``$W^{[1]}$``) unless the renderer's own
    parser then still finds a link or image, in which case every bracket is escaped.
    """
    pieces = _MATH.split(text)  # odd items are the math spans
    kept = "".join(p if i % 2 else p.translate(_BRACKETS) for i, p in enumerate(pieces))
    return text.translate(_BRACKETS) if _has_link(kept) else kept


def _has_link(text):
    """Whether nbconvert's markdown parser (formgrader's renderer) finds an image or a link in ``text``.

    A bare http(s) address is the one link allowed: the renderer links it by itself.
    """
    try:
        from nbconvert.filters.markdown_mistune import MarkdownWithMath

        stack = list(MarkdownWithMath(renderer=None)(text))
    except Exception:  # noqa: BLE001 - fail closed: unparsable means "assume a link"
        return True
    while stack:
        token = stack.pop()
        if not isinstance(token, dict):
            return True
        if token.get("type") == "image" or (token.get("type") == "link" and not _plain_web_link(token)):
            return True
        stack.extend(token.get("children") or ())
    return False


def _plain_web_link(token):
    """A bare http(s) address the renderer turned into a link (its url plugin): the href is what is checked."""
    url = (token.get("attrs") or {}).get("url")
    return isinstance(url, str) and url.startswith(("http://", "https://")) and not _INVISIBLE.search(url)


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
