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
at once, by Arrow's compute kernels (RE2, C++) against ``PLAIN_LINE`` (in runs of
lines, see ``_plain_lines``): a pattern that accepts only a *subset* of what
``parse_line`` accepts (ASCII-only classes, no backslash escapes, only spaces as
trailing whitespace); the same four fields are then read from the byte offsets of
the lines it accepts (``parse_buffer``). Every line it does not accept (escapes, odd whitespace, malformed
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

# Fields of a plain line: ASCII-only classes, quoted fields without escapes (and without a newline,
# so that a pattern over several lines cannot read one field across two of them).
_QUOTED = r'"[^"\\\n]*"'
_LINE_BODY = (r'[!#-~]+ [!#-~]+ [!#-~]+ \[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}\] '
              + _QUOTED + r' [0-9]{3} (?:[0-9]{1,18}|-)(?: ' + _QUOTED + ' ' + _QUOTED + r'(?: .*)?)? *')
PLAIN_LINE = "^" + _LINE_BODY + "$"
# The same, for a line followed by its terminator: how parse_buffer sees lines in the text buffer...
PLAIN_LINE_NL = "^" + _LINE_BODY + r"\n?$"
# ...and for a run of such lines: true exactly when every line of the run is plain (no part of
# _LINE_BODY matches a newline, so the run can only match line by line).
PLAIN_LINES = r"^(?:" + _LINE_BODY + r"\n)*" + _LINE_BODY + r"\n?$"
GROUP_LINES = 16  # lines per RE2 call in the first check (see _plain_lines)
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
    # parse_buffer reads a newline as the end of a line: lines holding one take the Python path
    with_newline = {i: line for i, line in enumerate(lines) if "\n" in line}
    return parse_buffer(file, partition, first_line, data, ends - lengths, ends, with_newline)


class _Bytes:
    """The text buffer, read a few bytes at a time at many positions: ``at(positions, width)``.

    A gather of ``width``-byte items (numpy's ``V<width>`` dtype on a stride-1 view of the
    buffer) copies each item in one move, twice as fast as fancy-indexing rows of a 2-D
    ``as_strided`` view, and needs no padded copy of the buffer: only the last few bytes are
    copied, zero padded, for the positions near the end.
    """

    PAD = 32  # the widest read

    def __init__(self, data: bytes):
        self.data = np.frombuffer(data, dtype=np.uint8)
        self.tail_start = max(0, len(self.data) - self.PAD)
        self.tail = np.zeros(2 * self.PAD, dtype=np.uint8)
        self.tail[:len(self.data) - self.tail_start] = self.data[self.tail_start:]

    @staticmethod
    def _items(buf: np.ndarray, width: int) -> np.ndarray:
        return np.ndarray(shape=(max(0, len(buf) - width + 1),), dtype=np.dtype(f"V{width}"), buffer=buf,
                          strides=(1,))

    def at(self, positions: np.ndarray, width: int) -> np.ndarray:
        """``(len(positions), width)`` uint8: the bytes from each position on (zeros past the end)."""
        inside = positions <= len(self.data) - width
        if inside.all():
            items = self._items(self.data, width)[positions]
        else:
            items = np.empty(len(positions), dtype=np.dtype(f"V{width}"))
            items[inside] = self._items(self.data, width)[positions[inside]]
            items[~inside] = self._items(self.tail, width)[positions[~inside] - self.tail_start]
        return items.view(np.uint8).reshape(len(positions), width)


def _ints(array: pa.Array) -> np.ndarray:
    """A null-free Arrow int32 array as numpy, zero copy (``to_numpy(zero_copy_only=False)`` imports pandas)."""
    return np.frombuffer(array.buffers()[1], dtype=np.int32, count=array.offset + len(array))[array.offset:]


def _take(values: pa.Array, rows: np.ndarray) -> pa.Array:
    """``values.take(rows)`` (``pa.array`` of a numpy array would import pandas, ~1 s per Python worker)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return values.take(pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)]))


def _bools(mask: pa.BooleanArray) -> np.ndarray:
    """A null-free Arrow boolean array as numpy (unpacking its bits: ``to_numpy`` would import pandas)."""
    bits = np.frombuffer(mask.buffers()[1], dtype=np.uint8)
    return np.unpackbits(bits, count=mask.offset + len(mask), bitorder="little")[mask.offset:].view(bool)


def _string_view(text: _Bytes, data: pa.Buffer, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """The byte ranges ``data[starts[i]:starts[i] + lengths[i]]`` as an Arrow ``string_view`` array, no copy.

    Arrow's view layout: 16 bytes per value, the length (int32), then either the value itself
    (12 bytes or less, zero padded) or its first 4 bytes, a buffer index and an offset. It lets
    the hash kernels (``dictionary_encode``) read the fields in place in the text buffer, where a
    plain string array would need every field copied out first.
    """
    n = len(starts)
    views = np.empty((n, 4), dtype="<u4")  # written as four 32-bit columns: byte-wise it cost twice as much
    views[:, 0] = lengths
    views[:, 1] = text.at(starts, 4).view("<u4")[:, 0]
    views[:, 2] = 0  # buffer index 0
    views[:, 3] = starts
    short = np.flatnonzero(lengths <= 12)
    if len(short):
        inline = views.view(np.uint8).reshape(n, 16)
        inline[short, 4:16] = text.at(starts[short], 12) * (np.arange(12) < lengths[short, None])  # zero padded
    return pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), data])


def _encoded(values: pa.Array) -> tuple[list, np.ndarray]:
    """``(distinct values, int32 code per value)`` of a string array, by Arrow's hash kernel."""
    encoded = pc.dictionary_encode(values)
    return encoded.dictionary.cast(pa.string()).to_pylist(), _ints(encoded.indices)


def _plain_lines(lines: pa.BinaryArray, offsets: np.ndarray, buffer: pa.Buffer) -> np.ndarray:
    """Which of ``lines`` (each with its terminator) ``PLAIN_LINE_NL`` accepts.

    RE2 first checks runs of ``GROUP_LINES`` lines at once (``PLAIN_LINES``): one call per line cost
    ~0.15 us of set-up, a fifth of the whole check. Only the lines of runs that fail (a run holding a
    line with an escape, a damaged line...) are checked one by one. The check runs on bytes, not
    UTF-8 text: RE2's Latin-1 mode is ~20 % faster, and on valid UTF-8 it decides the same (every
    class of the pattern that a non-ASCII byte can match is a negated ASCII class); lines that are
    not valid UTF-8 take the Python path anyway.
    """
    n = len(lines)
    bounds = np.append(offsets[:n:GROUP_LINES], offsets[n])  # a run's bytes end where the next run's begin
    runs = pa.BinaryArray.from_buffers(pa.binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), buffer])
    run_ok = _bools(pc.match_substring_regex(runs, PLAIN_LINES))
    plain = np.repeat(run_ok, GROUP_LINES)[:n]
    failed = np.flatnonzero(~run_ok)
    if len(failed):
        recheck = (failed[:, None] * GROUP_LINES + np.arange(GROUP_LINES)).ravel()
        recheck = recheck[recheck < n]
        plain[recheck] = _bools(pc.match_substring_regex(_take(lines, recheck), PLAIN_LINE_NL))
    return plain


_SPACES = np.uint64(0x2020202020202020)
_ONES = np.uint64(0x0101010101010101)
_HIGH_BITS = np.uint64(0x8080808080808080)
_LOW_BYTES = np.array([(1 << 8 * k) - 1 for k in range(9)], dtype=np.uint64)  # [k]: the low k bytes of a word
_ZEROS = np.uint64(0x3030303030303030)
_DASH_HEAD = np.uint64(int.from_bytes(b" - - ", "little"))  # what follows a client when ident and user are '-'


def _lowest_flagged_byte(flags: np.ndarray) -> np.ndarray:
    """Index of the lowest byte whose high bit is set in each uint64 of ``flags`` (-1 if none).

    ``frexp`` reads off the position of the lowest set bit exactly (a power of two is exact in a
    float): ``frexp(2**(8k + 7)) = (0.5, 8k + 8)`` and ``frexp(0) = (0, 0)``.
    """
    lowest = flags & (~flags + np.uint64(1))
    return (np.frexp(lowest.astype(np.float64))[1] - 8) // 8


def _first_space(words: np.ndarray) -> np.ndarray:
    """Index of the first space byte in each little-endian uint64 word (-1 if none), eight bytes per step.

    The bit trick flags the bytes of ``word ^ spaces`` that are zero: the lowest flagged byte is
    always the first zero (only bytes above a zero can be flagged wrongly).
    """
    t = words ^ _SPACES
    return _lowest_flagged_byte((t - _ONES) & ~t & _HIGH_BITS)


def _first_below_digits(words: np.ndarray) -> np.ndarray:
    """Index of the first byte below ``'0'`` in each word (-1 if none): the same trick, for bytes < 0x30."""
    return _lowest_flagged_byte((words - _ZEROS) & ~words & _HIGH_BITS)


def _decimal(words: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """The number written by the first ``digits`` (0-8) bytes of each word (ASCII digits, first digit
    lowest), in three multiply-adds over digit pairs, quads and octets (SWAR)."""
    v = (words - _ZEROS) & _LOW_BYTES[digits]  # digit values; a borrow from the bytes past them is masked off
    v = v << ((8 - digits) * 8).astype(np.uint64)  # right-align: the freed low bytes are leading zeros
    v = (v * np.uint64(10) + (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v * np.uint64(100) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return ((v * np.uint64(10000) + (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _clients(text: _Bytes, buffer: pa.Buffer, lines: pa.BinaryArray, rows: np.ndarray,
             line_start: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    """``(distinct clients, int32 code per row, client length per row)`` of plain lines ``rows``.

    A client of up to 15 bytes (every IPv4 address) is read from the line's first 16 bytes as a
    zero-padded 16-byte key: one gather, and Arrow hashes fixed-size keys far faster than string
    views. Longer clients (IPv6, host names) go through string views.
    """
    words = text.at(line_start, 16).view("<u8")  # the line's first 16 bytes as two words
    in_first, in_second = _first_space(words[:, 0]), _first_space(words[:, 1])
    # the first space ends the client (the pattern proved there is one)
    length = np.where(in_first >= 0, in_first, np.where(in_second >= 0, in_second + 8, -1))
    short = length >= 0
    keys = np.empty((len(rows), 2), dtype=np.uint64)  # the client, zero padded to 16 bytes
    keys[:, 0] = words[:, 0] & _LOW_BYTES[np.minimum(length, 8)]
    keys[:, 1] = words[:, 1] & _LOW_BYTES[np.clip(length - 8, 0, 8)]
    if not short.all():
        keys = keys[short]
    encoded = pc.dictionary_encode(pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(keys),
                                                                        [None, pa.py_buffer(keys)]))
    distinct_keys = np.frombuffer(encoded.dictionary.buffers()[1], dtype=np.uint8,
                                  count=16 * len(encoded.dictionary)).reshape(-1, 16)
    in_value = distinct_keys != 0  # a client byte is never 0 ([!#-~]), so the zeros are the padding
    key_offsets = np.zeros(len(distinct_keys) + 1, dtype=np.int32)
    np.cumsum(in_value.sum(axis=1), out=key_offsets[1:])
    distinct = pa.StringArray.from_buffers(len(distinct_keys), pa.py_buffer(key_offsets),
                                           pa.py_buffer(np.ascontiguousarray(distinct_keys[in_value]))).to_pylist()
    codes = np.empty(len(rows), dtype=np.int32)
    codes[short] = _ints(encoded.indices)
    long_ = np.flatnonzero(~short)
    if len(long_):
        length[long_] = _ints(pc.find_substring(_take(lines, rows[long_]), b" "))
        long_distinct, long_codes = _encoded(_string_view(text, buffer, line_start[long_], length[long_]))
        codes[long_] = long_codes + len(distinct)  # never equal to a short client: they are longer
        distinct += long_distinct
    return distinct, codes, length


def _status_and_bytes(text: _Bytes, close_quote: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Status (int16) and response bytes (int64; '-' is 0) of plain lines, from the request's closing quote.

    In a plain line ``" SSS N`` follows the request: three status digits, a space and 1-18 digits
    or '-', then a space, the line's end or the buffer's end (all bytes below '0', like '-'), so the
    count's digits run up to the first byte below '0'.
    """
    words = text.at(close_quote + 2, 16).view("<u8")  # "SSS NNNN", "NNNNNNNN"
    status = _decimal(words[:, 0], np.full(len(close_quote), 3)).astype(np.int16)
    count = (words[:, 0] >> np.uint64(32)) | (words[:, 1] << np.uint64(32))  # its first 8 bytes
    digits = _first_below_digits(count)
    size = _decimal(count, np.where(digits >= 0, digits, 8))
    longer = np.flatnonzero(digits < 0)  # more than 8 digits (at most 18: the pattern says so)
    if len(longer):
        rest = text.at(close_quote[longer] + 14, 16).view("<u8")  # digits 9-16, 17-18
        second, third = _first_below_digits(rest[:, 0]), _first_below_digits(rest[:, 1])
        n2 = np.where(second >= 0, second, 8)
        n3 = np.where(second >= 0, 0, third)
        size[longer] = ((size[longer] * 10 ** n2 + _decimal(rest[:, 0], n2)) * 10 ** n3
                        + _decimal(rest[:, 1], n3))
    return status, size


def parse_buffer(file: str, partition: int, first_line: int, data: bytes, starts: np.ndarray,
                 ends: np.ndarray, replaced: dict[int, str] | None = None) -> RequestBatch:
    """Parse the lines ``data[starts[i]:ends[i]]`` (in order, each followed by one terminator byte,
    ``\\n``, except possibly the last) of one partition; ``first_line`` numbers the first. Lines that
    are not valid UTF-8 (or hold a ``\\n``) come decoded in ``replaced`` (line index -> text); all
    others must be valid.

    The text stays one buffer: RE2 checks every line in place (``_plain_lines``), and the fields
    of plain lines are located with numpy on their byte offsets (and Arrow's ``find_substring``
    for the request's closing quote), since the pattern already proved the line's shape
    (capturing them with RE2 cost twice the match). Other lines are decoded one by one and go to
    ``parse_line``.
    """
    n = len(starts)
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    buffer = pa.py_buffer(data)
    text = _Bytes(data)
    if len(data) >= 2**31:
        raise ValueError("parse_buffer takes less than 2 GiB of text at a time")
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[:n] = starts
    offsets[n] = len(data) if n else 0
    # Value i is line i with its terminator (PLAIN_LINE_NL allows one trailing \n).
    lines = pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), buffer])
    plain = _plain_lines(lines, offsets, buffer) if n else np.zeros(0, dtype=bool)
    if replaced:  # whatever RE2 made of their bytes, these lines take the Python path
        plain[list(replaced)] = False
    rows = np.flatnonzero(plain)
    line_start = starts[rows]
    distinct_ips, ip_codes, ip_length = _clients(text, buffer, lines, rows, line_start)
    # In a plain line the client, ident and user hold neither spaces nor quotes, the timestamp no
    # quote. Mostly ident and user are '-': then the request's quote is 34 bytes after the client.
    space = line_start + ip_length
    open_quote = space + 34
    usual = (text.at(space, 8).view("<u8")[:, 0] & _LOW_BYTES[5]) == _DASH_HEAD
    other_head = np.flatnonzero(~usual)
    if len(other_head):
        open_quote[other_head] = line_start[other_head] + _ints(
            pc.find_substring(_take(lines, rows[other_head]), b'"'))
    if len(rows):
        # values from just after each opening quote to just after the next plain line's one
        after = np.empty(len(rows) + 1, dtype=np.int32)
        after[:-1] = open_quote + 1
        after[-1] = len(data)
        rest = pa.BinaryArray.from_buffers(pa.binary(), len(rows), [None, pa.py_buffer(after), buffer])
        close_quote = open_quote + 1 + _ints(pc.find_substring(rest, b'"'))
    else:
        close_quote = open_quote
    # URL = request minus method and protocol, worked out once per distinct request line.
    requests, request_codes = _encoded(_string_view(text, buffer, open_quote + 1, close_quote - open_quote - 1))
    distinct_urls: list = []
    url_index: dict = {}
    url_of_request = np.array(_codes_for([split_request(r)[1] for r in requests], distinct_urls, url_index),
                              dtype=np.int32)
    url_codes = url_of_request[request_codes]
    status, size = _status_and_bytes(text, close_quote)

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
