"""``log_line_prefix`` compiled into an RE2 regex (Arrow's ``extract_regex``) with named groups.

Every escape PostgreSQL documents is read (``%a %u %d %r %h %b %p %P %t %m %n %i %e %c %l %s %v %x %q %Q %L
%%``), with its padding (``%-10u``). ``%q`` ends the prefix of non-session processes: what follows it is
optional. A free-text field (user, database, application...) runs up to the literal character that follows
it in the prefix (``%u@%d`` reads the user up to ``@``): greedy character classes keep RE2 on its fast path
(non-greedy ``.*?`` groups made the pass six times slower). A field whose value holds that character (an
application_name with a comma before ``,client=``) is misread: the line still counts, that field is wrong.

Groups the reader uses: ``head`` (the whole prefix with the severity and the spaces after it), ``ts``
(``%t``/``%m``), ``epoch`` (``%n``), ``pid``, ``user``, ``db``, ``client`` (``%h``/``%r``, the port
apart), ``app``, ``sqlstate`` (``%e``), ``session`` (``%c``), ``sev``.
"""

from __future__ import annotations

import re

#: RDS and Aurora PostgreSQL's fixed prefix (the parameter group cannot change it).
RDS_PREFIX = "%t:%r:%u@%d:[%p]:"
SEVERITIES = ("DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR",
              "LOG", "FATAL", "PANIC")
SECONDARY = ("DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION")

_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z]{1,5}| ?[+-]\d\d(?::?\d\d)?)?"
#: escape -> (group name or None, regex; None: free text up to the next literal)
ESCAPES = {
    "a": ("app", None), "u": ("user", None), "d": ("db", None), "r": ("client", None), "h": ("client", None),
    "L": (None, None), "b": (None, None), "i": (None, None),
    "p": ("pid", r"\d+"), "P": (None, r"\d*"), "t": ("ts", _TS), "m": ("ts", _TS), "n": ("epoch", r"\d+(?:\.\d+)?"),
    "e": ("sqlstate", r"[0-9A-Z]{5}"), "c": ("session", r"[0-9a-f]+\.[0-9a-f]+"), "l": (None, r"\d+"),
    "s": (None, _TS), "v": (None, r"[0-9/]*"), "x": (None, r"\d*"), "Q": (None, r"-?\d+"),
}
_TOKEN = re.compile(r"%(-?\d*)([a-zA-Z%])")


def _tokens(prefix: str) -> list[tuple[str, str]]:
    """``("lit", text)`` and ``("esc", letter)`` in order; padding kept as ``("pad", letter)``."""
    out, pos = [], 0
    for m in _TOKEN.finditer(prefix):
        if m.start() > pos:
            out.append(("lit", prefix[pos:m.start()]))
        pad, esc = m.groups()
        out.append(("lit", "%") if esc == "%" else ("pad" if pad else "esc", esc))
        pos = m.end()
    if pos < len(prefix):
        out.append(("lit", prefix[pos:]))
    return out


def compile_prefix(prefix: str | None = None) -> str:
    """The regex (RE2 and Python ``re`` syntax) of a line's head: ``^(?P<head>prefix SEV:  )``."""
    prefix = RDS_PREFIX if prefix is None else prefix
    toks = _tokens(prefix.rstrip())
    parts: list[str] = []
    used: set[str] = set()
    optional_from = None
    for i, (kind, val) in enumerate(toks):
        if kind == "lit":
            parts.append(_literal(val))
            continue
        if val == "q":
            optional_from = len(parts)
            continue
        name, rx = ESCAPES.get(val, (None, None))
        if rx is None:
            stop = next((v[0] for k, v in toks[i + 1:] if k == "lit" and v.strip()), None)
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt and nxt[0] == "lit" and nxt[1][:1].isspace():
                stop = " "
            rx = r"\S*" if stop in (None, " ") else "[^" + re.escape(stop) + ("(" if val == "r" else "") + r"\n]*"
        group = f"(?P<{name}>{rx})" if name and name not in used else f"(?:{rx})"
        if name:
            used.add(name)
        if val == "r":
            group += r"(?:\((?P<port>\d*)\))?"
        parts.append(r" *" + group + r" *" if kind == "pad" else group)
    if optional_from is not None:
        parts = parts[:optional_from] + ["(?:" + "".join(parts[optional_from:]) + ")?"]
    return "^(?P<head>" + "".join(parts) + r" *(?P<sev>[A-Z]+[1-5]?):  ?)"


def _literal(text: str) -> str:
    return re.sub(r"(\\ )+|( )+", " +", re.escape(text)) if text.strip() else " +"
