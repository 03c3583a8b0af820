"""Attacker-written text, shown as text: the one escaping path for every output of a record.

Much of what a record shows was written by whoever caused the incident: CloudTrail fields
(``userIdentity.userName``, ``sourceIPAddress``), user agents, request paths, log messages, query
text, even an incident title pasted from a ticket. None of it may become markup, a link, or a terminal
control sequence in what the responders open.

- :func:`visible` shows control characters as escapes (``\\x1b``, ``\\x07``, ``\\x9b``): every C0 code
  but newline and tab, DEL, every C1 code, and the Unicode bidirectional overrides that reorder what a
  reader sees. Used on HTML pages (:mod:`forensics.report_html`), Markdown and the terminal.
- :func:`terminal` is :func:`visible` for one line printed to a terminal (no ``\\r`` rewriting).
- :func:`md_text` is a value inside Markdown prose: every character that can open or close a construct
  (``< > & [ ] * ` \\ | ~``, and ``_`` where it can start or end emphasis) backslash-escaped, so no tag, link, image, emphasis or code span can
  start inside it (``[x](javascript:…)`` stays literal text).
- :func:`md_code` is a value as a Markdown code span that survives backticks inside it: its fence is one
  backtick longer than the longest run in the value (CommonMark 6.1).
- :func:`markdown_html` renders a Markdown document to HTML with raw HTML *escaped* (never passed
  through) and only ``http(s)``, ``mailto``, in-page and relative links kept: anything else
  (``javascript:``, ``data:``, ``vbscript:``, ``file:``) becomes ``#unsafe-link``; an image is shown as
  its alt text, never fetched. nbconvert renders a
  notebook's Markdown *outputs* with raw HTML live (only ``<script>`` is stripped later), so a notebook
  shows Markdown built from evidence through :func:`markdown` (an HTML output made here), never
  through ``IPython.display.Markdown``.
"""

from __future__ import annotations

import html
import re

#: C0 controls but \t and \n, DEL, C1 controls, and the bidi embedding/override/isolate characters.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Inline Markdown punctuation that can start or end a construct (CommonMark 2.4 backslash escapes); the
#: values are inline, so line-start markers (``#``, ``+``, ``1.``) cannot act, and ``(`` needs a ``]``.
_MD_PUNCT = re.compile(r"([\\`*\[\]|~<>&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_SAFE_SCHEMES = ("http:", "https:", "mailto:")
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):")


def _escape_char(m: re.Match) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(value) -> str:
    """``value`` as text with every control character shown as an escape (``\\x1b``); ``\\n`` and ``\\t``
    kept. ``\\r`` is escaped too unless it ends a line (``\\r\\n``)."""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub(_escape_char, text.replace("\r\n", "\n"))
    return text


def terminal(value) -> str:
    """One line for a terminal: :func:`visible` (no escape sequence, no bell, no title change)."""
    return visible(value)


def md_text(value) -> str:
    """``value`` as literal text inside Markdown prose (one line: newlines become spaces)."""
    text = visible(value).replace("\n", " ").replace("\t", " ")
    # backslash-escaped, < and & included: no tag, no autolink <scheme:...>, no entity, no link, no emphasis
    return _MD_PUNCT.sub(r"\\\1", text)


def md_code(value) -> str:
    """``value`` as one Markdown code span whatever backticks it holds (CommonMark: a code span ends at a
    backtick string of the *same* length as its opening one)."""
    text = visible(value).replace("\n", " ").replace("\t", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space each side when both are there: pad a value that starts or ends with a
    # backtick (it would join the fence) or with spaces on both sides (they would be stripped)
    pad = " " if text[:1] == "`" or text[-1:] == "`" or (text[:1] == " " and text[-1:] == " ") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def safe_url(url: str) -> str:
    """``url`` if it is http(s), mailto, an in-page anchor or a relative path; else ``#unsafe-link``."""
    u = (url or "").strip()
    # browsers ignore tabs/newlines and leading control characters inside a scheme ("java\tscript:")
    compact = re.sub(r"[\x00-\x20\x7f-\x9f]", "", u)
    m = _SCHEME.match(compact)
    if m is None:
        return u if not compact.startswith(("//", "\\\\", "/\\", "\\/")) else "#unsafe-link"
    return u if (m.group(1).lower() + ":") in _SAFE_SCHEMES else "#unsafe-link"


def markdown_html(document: str) -> str:
    """A Markdown document as HTML: raw HTML shown as text, unsafe links neutralised, control
    characters visible. mistune (nbconvert's own Markdown renderer) with ``escape=True``."""
    import mistune

    class _Renderer(mistune.HTMLRenderer):
        def sanitize_url(self, url: str) -> str:  # links and images (mistune >= 3.1)
            return safe_url(url)

        def safe_url(self, url: str) -> str:
            return html.escape(safe_url(url), quote=True)

        def image(self, text: str, url: str, title=None) -> str:  # never fetched: its alt text only
            return html.escape(f"[image: {text}]", quote=False)

    md = mistune.create_markdown(renderer=_Renderer(escape=True), plugins=["table", "strikethrough"])
    return md(visible(document))


class markdown:  # noqa: N801 - used like IPython.display.Markdown
    """A Markdown document shown in a notebook as HTML made by :func:`markdown_html` (what nbconvert
    would do with a Markdown output, but with raw HTML escaped): ``display(safe_text.markdown(md))``."""

    def __init__(self, document: str):
        self.document = document

    def _repr_html_(self) -> str:
        return markdown_html(self.document)

    def __repr__(self) -> str:
        return visible(self.document)
