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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from spark_apps.access_logs.parser import parse_request_fact

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


def _encode(values: tuple) -> tuple[list, np.ndarray]:
    """Dictionary-encode ``values``: (distinct values in first-seen order, int32 code per value)."""
    codes = dict.fromkeys(values)  # C loop; keeps first-seen order
    for code, value in enumerate(codes):
        codes[value] = code
    return list(codes), np.fromiter(map(codes.__getitem__, values), dtype=np.int32, count=len(values))


def _batch(file: str, partition: int, first_line: int, lines: int, facts: list, quarantined: list) -> RequestBatch:
    if facts:
        ips, urls, status, size = zip(*facts)
    else:
        ips = urls = status = size = ()
    distinct_ips, ip_codes = _encode(ips)
    distinct_urls, url_codes = _encode(urls)
    return RequestBatch(file, partition, first_line, lines, distinct_ips, ip_codes, distinct_urls, url_codes,
                        np.array(status, dtype=np.int16), np.array(size, dtype=np.int64), quarantined)


def parse_partition(file: str, partition: int, lines: Iterable[str],
                    batch_lines: int = BATCH_LINES) -> Iterator[RequestBatch]:
    """Parse one input partition into batches; every line lands in exactly one batch.

    A partition always yields at least one batch (possibly with ``lines == 0``), so
    the line accounting sees every partition of every file.
    """
    facts: list = []
    quarantined: list = []
    first = 1
    number = 0
    for number, line in enumerate(lines, start=1):
        fact = parse_request_fact(line)
        if type(fact) is tuple:
            facts.append(fact)
        else:
            quarantined.append((number, fact.reason, line))
        if number - first + 1 == batch_lines:
            yield _batch(file, partition, first, batch_lines, facts, quarantined)
            facts, quarantined, first = [], [], number + 1
    if number >= first or first == 1:
        yield _batch(file, partition, first, number - first + 1, facts, quarantined)
