"""The parsed form of access-log lines: column batches, the records of the cached RDD.

Every input partition (a slice of one file) becomes a few ``RequestBatch``
records of up to ``BATCH_LINES`` consecutive lines each. A batch keeps, column
by column, what the six analyses read of each request: client and URL
dictionary-encoded (distinct values once, plus an int32 code per request),
status and response bytes as numpy arrays. Lines that do not parse stay in the
batch as ``(line number in the partition, reason, raw line)``.

Why batches and not one tuple per request: PySpark stores a cached Python RDD as
pickled bytes in the JVM and unpickles every record on each pass over it. With a
tuple per request, each of the six analyses paid that (and a Python dict update)
per request, so the cache saved little over re-parsing. A batch unpickles as a few
flat arrays, and the analyses count with ``numpy.bincount`` over the codes, so a
pass over the cache costs a small fraction of the parse. The RDD API is unchanged:
the analyses are still ``mapPartitions`` + ``reduceByKey`` + ``takeOrdered``.

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
    """Parse consecutive ``lines`` of one partition (``first_line`` = number of ``lines[0]``)."""
    text = pa.array(lines, pa.string())
    plain = pc.match_substring_regex(text, PLAIN_LINE).to_numpy(zero_copy_only=False)
    fields = pc.extract_regex(text.filter(pa.array(plain)), PLAIN_LINE_FIELDS)

    ips = pc.dictionary_encode(fields.field("ip"))
    distinct_ips = ips.dictionary.to_pylist()
    ip_codes = ips.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    # URL = request minus method and protocol, worked out once per distinct request line.
    requests = pc.dictionary_encode(fields.field("request"))
    distinct_urls: list = []
    url_index: dict = {}
    url_of_request = np.array(
        _codes_for([split_request(r)[1] for r in requests.dictionary.to_pylist()], distinct_urls, url_index),
        dtype=np.int32)
    url_codes = url_of_request[requests.indices.to_numpy(zero_copy_only=False)]
    status = pc.cast(fields.field("status"), pa.int16()).to_numpy(zero_copy_only=False)
    size_text = fields.field("bytes")
    size = pc.cast(pc.if_else(pc.equal(size_text, "-"), "0", size_text), pa.int64()).to_numpy(zero_copy_only=False)

    other = np.flatnonzero(~plain)
    quarantined = []
    if len(other):
        facts, positions = [], []
        for position in other.tolist():
            result = _quarantine_or_fact(lines[position])
            if type(result) is tuple:
                facts.append(result)
                positions.append(position)
            else:
                quarantined.append((first_line + position, result, lines[position]))
        if facts:
            ip, url, st, sz = zip(*facts)
            ip_index = {value: code for code, value in enumerate(distinct_ips)}
            # keep requests in line order: merge by position
            order = np.argsort(np.concatenate([np.flatnonzero(plain), positions]), kind="stable")
            ip_codes = np.concatenate([ip_codes, _codes_for(ip, distinct_ips, ip_index)]).astype(np.int32)[order]
            url_codes = np.concatenate([url_codes, _codes_for(url, distinct_urls, url_index)]).astype(np.int32)[order]
            status = np.concatenate([status, np.array(st, dtype=np.int16)])[order]
            size = np.concatenate([size, np.array(sz, dtype=np.int64)])[order]
    return RequestBatch(file, partition, first_line, len(lines), distinct_ips, ip_codes.astype(np.int32, copy=False),
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
