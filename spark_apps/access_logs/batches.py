"""The parsed form of access-log lines: column batches, the records of the parsed RDD.

Every input partition (a slice of one file) becomes a few ``RequestBatch``
records of up to ``BATCH_LINES`` consecutive lines each (or one per block the task
reads, see ``reader``). A batch keeps, column by column, what the six analyses read of
each request: client and URL dictionary-encoded (distinct values once, plus an int32
code per request), status and response bytes as numpy arrays. Lines that do not parse
stay in the batch as ``(line number in the partition, reason, raw line)``.

Why batches and not one tuple per request: the analyses count with
``numpy.bincount`` over a batch's codes (``analyses.count_partition``), so Python
does per-key work, not per-request work, and the RDD API is unchanged: the analyses
are still ``mapPartitions`` + ``reduceByKey``, then one summary of the merged counts.

Parsing a batch: ``parser.parse_line`` (Python ``re``) costs ~4 us per line, most
of it scanning the referrer and user agent. So a batch is first matched, all lines
at once, by Arrow's compute kernels (RE2, C++) against ``PLAIN_LINE``: a pattern
that accepts only a *subset* of what ``parse_line`` accepts (ASCII-only classes,
no backslash escapes, only spaces as trailing whitespace) and extracts the same
four fields. Every line it does not accept (escapes, odd whitespace, malformed
lines) goes through ``parse_line``, which stays the single definition of a valid
line and of the quarantine reasons. ``tests/spark_apps/access_logs`` checks both
paths give the same answer on generated, hand-made and damaged lines.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_apps.access_logs.parser import ParsedLine, parse_line, split_request

_QUOTED = r'"[^"\\]*"'
_HEAD = (r'^(?P<ip>[!#-~]+) [!#-~]+ [!#-~]+ \[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}\] '
         r'"(?P<request>[^"\\]*)" (?P<status>[0-9]{3}) (?P<bytes>[0-9]{1,18}|-)')
# The whole plain line (checked without captures: RE2 decides it with its fast DFA)...
PLAIN_LINE = _HEAD + r"(?: " + _QUOTED + " " + _QUOTED + r"(?: .*)?)? *$"
# ...and its fields, captured from the head only (capturing through the user agent costs 4x).
PLAIN_LINE_FIELDS = _HEAD
# The same, for a line followed by its terminator: how parse_buffer sees lines in the text buffer.
PLAIN_LINE_NL = PLAIN_LINE[:-1] + r"\n?$"
MAX_BYTES = 2**63 - 1  # int64 column; the plain pattern's 18 digits always fit

BATCH_LINES = 65536  # lines per batch: large enough to amortise per-batch work, small enough for memory


@dataclass
class RequestBatch:
    """Parsed requests of lines ``first_line .. first_line + lines - 1`` of one input partition."""

    file: str
    file_partition: int
    first_line: int  # 1-based line number, within the partition, of the batch's first line
    lines: int  # input lines covered: parsed requests + quarantined lines
    ips: list  # distinct clients; ip_codes index into it
    ip_codes: np.ndarray  # int32, one per request
    urls: list  # distinct URLs; url_codes index into it
    url_codes: np.ndarray  # int32, one per request
    status: np.ndarray  # int16, one per request
    bytes: np.ndarray  # int64, one per request ('-' counted as 0, see parser)
    quarantined: list = field(default_factory=list)  # [(line_in_partition, reason, raw)]

    @property
    def requests(self) -> int:
        return len(self.status)

    def facts(self) -> Iterator[tuple]:
        """``(ip, url, status, bytes)`` per request, in line order (for tests and debugging)."""
        for ip, url, status, size in zip(self.ip_codes.tolist(), self.url_codes.tolist(),
                                         self.status.tolist(), self.bytes.tolist()):
            yield self.ips[ip], self.urls[url], status, size


def _quarantine_or_fact(line: str):
    parsed = parse_line(line)
    if type(parsed) is not ParsedLine:
        return parsed.reason
    if parsed.bytes > MAX_BYTES:
        return "byte count out of range"
    return parsed.ip, parsed.url, parsed.status, parsed.bytes


def _codes_for(values: list, distinct: list, index: dict) -> list:
    """Codes of ``values`` in ``distinct``/``index``, appending values not seen yet."""
    codes = []
    for value in values:
        code = index.get(value)
        if code is None:
            code = index[value] = len(distinct)
            distinct.append(value)
        codes.append(code)
    return codes


def parse_batch(file: str, partition: int, first_line: int, lines: list[str]) -> RequestBatch:
    """Parse consecutive ``lines`` of one partition (``first_line`` = number of ``lines[0]``).

    ``lines`` are the decoded lines without their terminators (a line may still hold a
    ``\\n``: it is one list element, and ``parse_line`` decides what it is).
    """
    data = "\n".join(lines).encode("utf-8")
    lengths = np.fromiter((len(line.encode("utf-8")) for line in lines), dtype=np.int64, count=len(lines))
    ends = np.cumsum(lengths + 1) - 1  # each line is followed by one separator byte (none after the last)
    return parse_buffer(file, partition, first_line, data, ends - lengths, ends)


def _windows(data: bytes, width: int) -> np.ndarray:
    """Row ``i`` = bytes ``i .. i + width - 1`` of ``data`` (zero padded at the end), without copying per row."""
    padded = np.zeros(len(data) + width, dtype=np.uint8)
    padded[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    return np.lib.stride_tricks.as_strided(padded, shape=(len(data) + 1, width), strides=(1, 1), writeable=False)


def _string_view(windows: np.ndarray, data: pa.Buffer, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """The byte ranges ``data[starts[i]:starts[i] + lengths[i]]`` as an Arrow ``string_view`` array, no copy.

    Arrow's view layout: 16 bytes per value, the length (int32), then either the value itself
    (12 bytes or less, zero padded) or its first 4 bytes, a buffer index and an offset. It lets
    the hash kernels (``dictionary_encode``) read the fields in place in the text buffer, where a
    plain string array would need every field copied out first.
    """
    n = len(starts)
    views = np.empty((n, 16), dtype=np.uint8)
    views[:, 0:4] = lengths.astype("<i4").view(np.uint8).reshape(n, 4)
    head = windows[starts, :12]  # first 12 bytes of each value (and what follows it)
    head[np.arange(12) >= lengths[:, None]] = 0
    views[:, 4:16] = head
    long_ = lengths > 12
    views[long_, 8:12] = 0  # buffer index 0
    views[long_, 12:16] = starts[long_].astype("<i4").view(np.uint8).reshape(-1, 4)
    return pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), data])


def _digits(windows: np.ndarray, starts: np.ndarray, max_digits: int) -> np.ndarray:
    """The unsigned decimal number of up to ``max_digits`` digits at each of ``starts`` (int64; 0 if none)."""
    digits = windows[starts, :max_digits] - np.uint8(48)  # non-digits wrap around to 10 or more
    value = np.zeros(len(starts), dtype=np.int64)
    alive = np.ones(len(starts), dtype=bool)
    for j in range(max_digits):
        alive &= digits[:, j] < 10  # still in the leading run of digits
        if not alive.any():
            break
        value[alive] = value[alive] * 10 + digits[alive, j]
    return value


def _bools(mask: pa.BooleanArray) -> np.ndarray:
    """A null-free Arrow boolean array as numpy (unpacking its bits: ``to_numpy`` would import pandas)."""
    bits = np.frombuffer(mask.buffers()[1], dtype=np.uint8)
    return np.unpackbits(bits, count=mask.offset + len(mask), bitorder="little")[mask.offset:].view(bool)


def parse_buffer(file: str, partition: int, first_line: int, data: bytes, starts: np.ndarray,
                 ends: np.ndarray, replaced: dict[int, str] | None = None) -> RequestBatch:
    """Parse the lines ``data[starts[i]:ends[i]]`` (in order, each followed by its terminator byte
    except possibly the last) of one partition; ``first_line`` numbers the first. Lines that are
    not valid UTF-8 come decoded in ``replaced`` (line index -> text); all others must be valid.

    The text stays one buffer: RE2 checks every line in place (``PLAIN_LINE``), and the fields
    of plain lines are located with Arrow's ``find_substring`` and numpy on their byte offsets,
    since the pattern already proved the line's shape (capturing them with RE2 cost twice the
    match). Other lines are decoded one by one and go to ``parse_line``.
    """
    n = len(starts)
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    buffer = pa.py_buffer(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    windows = _windows(data, 20)
    if len(data) >= 2**31:
        raise ValueError("parse_buffer takes less than 2 GiB of text at a time")
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[:n] = starts
    offsets[n] = len(data) if n else 0
    # Value i is line i with its terminator (PLAIN_LINE_NL allows one trailing \n).
    text = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), buffer)
    plain = _bools(pc.match_substring_regex(text, PLAIN_LINE_NL))
    if replaced:  # whatever RE2 made of their bytes, these lines take the Python path
        plain[list(replaced)] = False
    rows = np.flatnonzero(plain)
    line_start = starts[rows]
    # In a plain line the client, ident and user hold neither spaces nor quotes, the timestamp no
    # quote: the first space ends the client, the first quote opens the request, the next closes it.
    ip_length = pc.find_substring(text, " ").to_numpy(zero_copy_only=False)[rows].astype(np.int64)
    open_quote = line_start + pc.find_substring(text, '"').to_numpy(zero_copy_only=False)[rows]
    if len(rows):
        # values from just after each opening quote to just after the next plain line's one
        after = np.empty(len(rows) + 1, dtype=np.int32)
        after[:-1] = open_quote + 1
        after[-1] = len(data)
        rest = pa.StringArray.from_buffers(len(rows), pa.py_buffer(after), buffer)
        close_quote = open_quote + 1 + pc.find_substring(rest, '"').to_numpy(zero_copy_only=False)
    else:
        close_quote = open_quote
    ips = pc.dictionary_encode(_string_view(windows, buffer, line_start, ip_length))
    distinct_ips = ips.dictionary.cast(pa.string()).to_pylist()
    ip_codes = ips.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    # URL = request minus method and protocol, worked out once per distinct request line.
    requests = pc.dictionary_encode(_string_view(windows, buffer, open_quote + 1, close_quote - open_quote - 1))
    distinct_urls: list = []
    url_index: dict = {}
    url_of_request = np.array(
        _codes_for([split_request(r)[1] for r in requests.dictionary.cast(pa.string()).to_pylist()],
                   distinct_urls, url_index), dtype=np.int32)
    url_codes = url_of_request[requests.indices.to_numpy(zero_copy_only=False)]
    status = ((buf[close_quote + 2].astype(np.int16) - 48) * 100 + (buf[close_quote + 3].astype(np.int16) - 48) * 10
              + (buf[close_quote + 4].astype(np.int16) - 48))
    size = _digits(windows, close_quote + 6, 18)  # '-' reads as no digits: 0

    other = np.flatnonzero(~plain)
    quarantined = []
    if len(other):
        facts, positions = [], []
        for position in other.tolist():
            line = replaced.get(position) if replaced else None
            if line is None:
                line = data[starts[position]:ends[position]].decode("utf-8")
            result = _quarantine_or_fact(line)
            if type(result) is tuple:
                facts.append(result)
                positions.append(position)
            else:
                quarantined.append((first_line + position, result, line))
        if facts:
            ip, url, st, sz = zip(*facts)
            ip_index = {value: code for code, value in enumerate(distinct_ips)}
            # Keep requests in line order: rows and positions are disjoint sorted line indexes, so each
            # request's place is its rank in its own list plus the other list's lines before it
            # (a scatter, where sorting the concatenation cost several times more).
            positions = np.array(positions, dtype=np.int64)
            plain_slot = np.arange(len(rows)) + np.searchsorted(positions, rows)
            fact_slot = np.arange(len(positions)) + np.searchsorted(rows, positions)

            def merged(plain_values, fact_values, dtype):
                out = np.empty(len(rows) + len(positions), dtype=dtype)
                out[plain_slot] = plain_values
                out[fact_slot] = fact_values
                return out

            ip_codes = merged(ip_codes, _codes_for(ip, distinct_ips, ip_index), np.int32)
            url_codes = merged(url_codes, _codes_for(url, distinct_urls, url_index), np.int32)
            status = merged(status, st, np.int16)
            size = merged(size, sz, np.int64)
    return RequestBatch(file, partition, first_line, n, distinct_ips, ip_codes.astype(np.int32, copy=False),
                        distinct_urls, url_codes.astype(np.int32, copy=False), status.astype(np.int16, copy=False),
                        size.astype(np.int64, copy=False), quarantined)


def parse_partition(file: str, partition: int, lines: Iterable[str],
                    batch_lines: int = BATCH_LINES) -> Iterator[RequestBatch]:
    """Parse one input partition into batches; every line lands in exactly one batch.

    A partition always yields at least one batch (possibly with ``lines == 0``), so
    the line accounting sees every partition of every file.
    """
    chunk: list = []
    first = 1
    for line in lines:
        chunk.append(line)
        if len(chunk) == batch_lines:
            yield parse_batch(file, partition, first, chunk)
            first += len(chunk)
            chunk = []
    if chunk or first == 1:
        yield parse_batch(file, partition, first, chunk)
