"""Parse one Apache / Nginx access-log line (Common or Combined Log Format).

Common:   ``host ident user [dd/Mon/yyyy:HH:MM:SS +zzzz] "request" status bytes``
Combined: the same followed by ``"referrer" "user-agent"`` (anything after those
two, e.g. Nginx's ``"$http_x_forwarded_for"`` or Apache's ``%D``, is ignored).

Decisions, so that callers know what they get:

* ``bytes``: ``-`` becomes ``0``. Apache documents ``%b`` as "size of response in
  bytes ... a '-' rather than a 0 when no bytes are sent", so ``-`` *means* zero.
* ``ts`` is kept as the logged text (``10/Oct/2000:13:55:36 -0700``), checked for
  shape by the pattern; ``ParsedLine.time`` converts it to an aware ``datetime``.
  Converting on every line would cost more than the whole regex match, and none
  of the analyses needs the time.
* Request line ``METHOD target [HTTP/x.y]``: the target may contain spaces (the
  method is the first word, the protocol the last word only if it starts with
  ``HTTP/``); a missing protocol (``GET /index.html``, HTTP/0.9 style) gives
  ``protocol=None``. A request field that is not ``METHOD target`` at all
  (``-`` for timed-out connections, TLS bytes sent to a plain-HTTP port) is
  still a valid log entry: its status and bytes count, ``method`` and
  ``protocol`` are ``None`` and ``url`` is the request field as logged.
* Quoted fields may contain ``\\"`` and ``\\\\`` (Apache's and Nginx's escaping);
  these two are unescaped, ``\\xhh`` escapes are left as logged.
* ``referrer`` / ``agent`` are ``None`` for Common Log Format lines and when the
  log says ``-``.
* Clients are whatever the host field holds (IPv4, IPv6, or a host name when
  ``HostnameLookups`` is on); they are not normalised.

Decoding is not done here: Spark's text reader (Hadoop ``Text.toString``)
replaces invalid UTF-8 byte sequences with U+FFFD, so a line with stray Latin-1
bytes reaches the parser as a ``str`` and parses; only the odd bytes change.

A line that does not fit returns ``ParseFailure(reason)`` instead of raising, so
one bad line never stops a job.
"""
from __future__ import annotations

import re
from collections import namedtuple
from datetime import datetime, timedelta, timezone

# Quoted field with backslash escapes, written as an "unrolled loop" (no
# alternation per character) because this runs once per line on every line.
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_TS = r"(\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})"

_LINE = re.compile(
    r"(\S+) (\S+) (\S+) \[" + _TS + r"\] " + _QUOTED + r" (\d{3}) (\d+|-)"
    r"(?: " + _QUOTED + r" " + _QUOTED + r"(?: .*)?)?\s*\Z"
)

# Cumulative prefixes of the pattern above, used only for lines that fail, to say
# *where* they stop matching. Ordered: the first prefix that does not match names
# the problem.
_DIAGNOSIS = [
    (re.compile(r"\S+ \S+ \S+ "), "missing client, ident or user field"),
    (re.compile(r"\S+ \S+ \S+ \[" + _TS + r"\] "), "missing or malformed [timestamp]"),
    (re.compile(r"\S+ \S+ \S+ \[" + _TS + r"\] \""), "request is not quoted"),
    (re.compile(r"\S+ \S+ \S+ \[" + _TS + r"\] " + _QUOTED), "unterminated request quote (truncated line?)"),
    (re.compile(r"\S+ \S+ \S+ \[" + _TS + r"\] " + _QUOTED + r" \d{3}(?= |\s*\Z)"),
     "missing or invalid status code (truncated line?)"),
    (re.compile(r"\S+ \S+ \S+ \[" + _TS + r"\] " + _QUOTED + r" \d{3} (?:\d+|-)(?= |\s*\Z)"),
     "missing or invalid byte count (truncated line?)"),
]
_ESCAPE = re.compile(r'\\(["\\])')
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}

_ParsedLineBase = namedtuple(
    "ParsedLine", "ip ts method url protocol status bytes referrer agent")


class ParsedLine(_ParsedLineBase):
    """One request. ``status`` and ``bytes`` are ints; see the module doc for the rest."""

    __slots__ = ()

    @property
    def time(self) -> datetime:
        return parse_clf_timestamp(self.ts)


ParseFailure = namedtuple("ParseFailure", "reason")
ParseFailure.__doc__ = "A line that is not a CLF/Combined entry; ``reason`` says where it breaks."


def parse_clf_timestamp(text: str) -> datetime:
    """``10/Oct/2000:13:55:36 -0700`` -> timezone-aware datetime (ValueError if invalid)."""
    try:
        month = _MONTHS[text[3:6]]
    except KeyError:
        raise ValueError(f"unknown month in timestamp {text!r}") from None
    sign = -1 if text[21] == "-" else 1
    offset = timedelta(hours=int(text[22:24]), minutes=int(text[24:26]))
    return datetime(
        int(text[7:11]), month, int(text[0:2]),
        int(text[12:14]), int(text[15:17]), int(text[18:20]),
        tzinfo=timezone(sign * offset),
    )


def _unescape(field: str) -> str:
    return _ESCAPE.sub(r"\1", field) if "\\" in field else field


def split_request(request: str) -> tuple[str | None, str, str | None]:
    """``'GET /a b HTTP/1.1'`` -> ``('GET', '/a b', 'HTTP/1.1')``; see module doc for odd requests."""
    method, sep, rest = request.partition(" ")
    if not sep or not rest or not method.replace("-", "").isalpha():
        return None, request, None
    target, sep, protocol = rest.rpartition(" ")
    if sep and target and protocol.startswith("HTTP/"):
        return method, target, protocol
    return method, rest, None


def diagnose(line: str) -> str:
    """Why ``line`` is not a CLF/Combined entry (called only for lines that failed)."""
    if not line.strip():
        return "empty line"
    for prefix, reason in _DIAGNOSIS:
        if prefix.match(line) is None:
            return reason
    return "malformed referrer/user-agent fields (truncated line?)"


def parse_line(line: str) -> ParsedLine | ParseFailure:
    match = _LINE.match(line)
    if match is None:
        return ParseFailure(diagnose(line))
    ip, _ident, _user, ts, request, status, size, referrer, agent = match.groups()
    method, url, protocol = split_request(_unescape(request))
    return ParsedLine(
        ip,
        ts,
        method,
        url,
        protocol,
        int(status),
        0 if size == "-" else int(size),
        None if referrer is None or referrer == "-" else _unescape(referrer),
        None if agent is None or agent == "-" else _unescape(agent),
    )
