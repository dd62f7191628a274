"""The six access-log analyses, as plain functions over RDDs.

All six are counts of requests by a key, so one pass over the parsed batches counts
every key they need (``count_requests``): inside a partition each batch
(``batches.RequestBatch``: client and URL dictionary-encoded, status and bytes as
numpy arrays) is counted with ``numpy.bincount`` over its codes, the partition emits
one ``((kind, key), requests)`` per distinct key, and one ``reduceByKey`` merges the
partitions. The six analyses then read that keyed RDD (as many records as there are
distinct clients, URLs and 4xx codes, not requests; the caller caches it): one more
job summarises every kind at once (``totals``: distinct keys, requests, the top N by
the tie rule), and each answer is read from that summary; the per-URL counts that go to
MySQL stay an RDD.

Why one pass and not one per analysis: each pass over a cache of the parsed day
unpickled every batch again (6.3 s of the 17 s at 10 M lines), and with a single pass
the parsed day need not be cached at all (``ingest.count_and_account``). And one summary
job, not six: on two cores a PySpark job costs ~0.3 s however little it reads.

Scaling rules followed everywhere:

* counting is ``reduceByKey`` after a per-partition combine, so Python does per-key
  work, not per-request work;
* rankings are each partition's top N (of the per-key counts) merged on the driver, so
  the driver only ever holds N items per partition; no ``countByValue`` and no
  ``collect`` of an unbounded key set. The only key set kept whole is 4xx status codes,
  bounded by 400..499.

Tie rule for every ranking: count descending, then key (URL or client) ascending
by plain string comparison, so reruns always give the same order.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from operator import add
from typing import Iterable, Iterator

import numpy as np
from pyspark import RDD

from spark_apps.access_logs.batches import RequestBatch

LARGE_RESPONSE_MIN_BYTES = 5000  # "larger than 5000 bytes": strictly more than this

# What count_requests counts (the first half of its keys).
CLIENT = "client"  # requests per client IP
URL = "url"  # requests per URL, any status
URL_200 = "url_200"  # per URL, status 200
URL_404 = "url_404"  # per URL, status 404
URL_LARGE = "url_large"  # per URL, more than LARGE_RESPONSE_MIN_BYTES response bytes
STATUS_4XX = "status_4xx"  # per 4xx status code
KINDS = (CLIENT, URL, URL_200, URL_404, URL_LARGE, STATUS_4XX)
_STATUS_4XX_CODES = list(range(400, 500))


def _add_counts(totals: dict, keys: list, counts: np.ndarray) -> None:
    present = np.flatnonzero(counts)
    if len(present) == len(keys):  # every key of the batch (its clients, its URLs): no lookup per key
        pairs = zip(keys, counts.tolist())
    else:
        pairs = zip(map(keys.__getitem__, present.tolist()), counts[present].tolist())
    get = totals.get
    for key, n in pairs:
        totals[key] = get(key, 0) + n


def count_partition(batches: Iterable[RequestBatch], min_bytes: int = LARGE_RESPONSE_MIN_BYTES) -> Iterator[tuple]:
    """``((kind, key), requests)`` for every kind of ``KINDS`` and key present in ``batches``."""
    totals: dict = {kind: {} for kind in KINDS}
    for batch in batches:
        _add_counts(totals[CLIENT], batch.ips, np.bincount(batch.ip_codes, minlength=len(batch.ips)))
        urls, codes = batch.urls, batch.url_codes
        _add_counts(totals[URL], urls, np.bincount(codes, minlength=len(urls)))
        for kind, mask in ((URL_200, batch.status == 200), (URL_404, batch.status == 404),
                           (URL_LARGE, batch.bytes > min_bytes)):
            _add_counts(totals[kind], urls, np.bincount(codes[mask], minlength=len(urls)))
        status = batch.status[(batch.status >= 400) & (batch.status <= 499)]
        _add_counts(totals[STATUS_4XX], _STATUS_4XX_CODES, np.bincount(status - 400, minlength=100))
    for kind, counts in totals.items():
        for key, requests in counts.items():
            yield (kind, key), requests


def merge_counts(partition_counts: RDD) -> RDD:
    """The partitions' ``count_partition`` records merged: one ``((kind, key), requests)`` per key."""
    return partition_counts.reduceByKey(add)


def count_requests(batches: RDD, min_bytes: int = LARGE_RESPONSE_MIN_BYTES) -> RDD:
    """``((kind, key), requests)`` of the ``RequestBatch`` RDD, all kinds in one pass (cache it)."""
    return merge_counts(batches.mapPartitions(lambda part: count_partition(part, min_bytes)))


def _of_kind(counts: RDD, kind: str) -> RDD:
    """``(key, requests)`` of one kind."""
    return counts.filter(lambda kv: kv[0][0] == kind).map(lambda kv: (kv[0][1], kv[1]))


def _ranking_key(pair):
    key, count = pair
    return (-count, key)


@dataclass(frozen=True)
class KindTotals:
    """One kind of the merged counts, summarised: what the six answers need of it."""

    keys: int  # distinct keys (clients, URLs, status codes)
    requests: int  # requests over all keys
    top: list  # the top (key, requests) pairs by the module's tie rule (top_n; every 4xx code)


def _top_size(kind: str, top_n: int) -> int:
    return len(_STATUS_4XX_CODES) if kind == STATUS_4XX else top_n  # the 4xx answer lists every code


def summarise_counts(pairs: Iterable[tuple], top_n: int) -> dict:
    """``{kind: KindTotals}`` of some ``((kind, key), requests)`` pairs (one partition of the
    merged counts): keys, requests and top candidates, keeping only a few candidates in memory."""
    keys = dict.fromkeys(KINDS, 0)
    requests = dict.fromkeys(KINDS, 0)
    top: dict = {kind: [] for kind in KINDS}
    size = {kind: _top_size(kind, top_n) for kind in KINDS}
    bound = {kind: 4 * size[kind] + 64 for kind in KINDS}  # bound memory: keep only candidates
    for (kind, key), n in pairs:
        keys[kind] += 1
        requests[kind] += n
        candidates = top[kind]
        candidates.append((key, n))
        if len(candidates) > bound[kind]:
            top[kind] = heapq.nsmallest(size[kind], candidates, key=_ranking_key)
    return {kind: KindTotals(keys[kind], requests[kind], heapq.nsmallest(size[kind], top[kind], key=_ranking_key))
            for kind in KINDS}


def merge_totals(partitions: Iterable[dict], top_n: int) -> dict:
    """The partitions' ``summarise_counts`` merged (every key lives in one partition of the merged counts)."""
    partitions = list(partitions)
    return {kind: KindTotals(sum(p[kind].keys for p in partitions), sum(p[kind].requests for p in partitions),
                             heapq.nsmallest(_top_size(kind, top_n), [pair for p in partitions for pair in p[kind].top],
                                             key=_ranking_key))
            for kind in KINDS}


def totals(counts: RDD, top_n: int) -> dict:
    """``{kind: KindTotals}`` of the merged counts, in one Spark job: each partition sends its
    summary, the driver merges them, so it never holds more than the top candidates.

    (The job runs this same summary together with its line accounting: ``ingest.summarise_day``.)"""
    return merge_totals(counts.mapPartitions(lambda pairs: [summarise_counts(pairs, top_n)]).collect(), top_n)


@dataclass(frozen=True)
class ClientStats:
    unique_ips: int
    top_clients: list  # [(ip, requests)] ranked by the module's tie rule


def client_stats(totals: dict, top_n: int) -> ClientStats:
    """(1) Number of distinct client IPs and the ``top_n`` clients by requests."""
    return ClientStats(totals[CLIENT].keys, totals[CLIENT].top[:top_n])


@dataclass(frozen=True)
class Url200:
    distinct_urls: int
    requests: int
    url_counts: RDD  # (url, requests), lazy: it can be large


def url_200_counts(totals: dict, counts: RDD) -> Url200:
    """(2) Requests answered with status 200 per URL: how many URLs and requests, and the counts."""
    return Url200(totals[URL_200].keys, totals[URL_200].requests, _of_kind(counts, URL_200))


@dataclass(frozen=True)
class ClientErrors:
    total: int
    by_status: dict  # {status: responses}, only statuses that occurred


def client_errors(totals: dict) -> ClientErrors:
    """(3) Number of 4xx responses, in total and per status code."""
    return ClientErrors(totals[STATUS_4XX].requests, dict(sorted(totals[STATUS_4XX].top)))


@dataclass(frozen=True)
class LargeResponses:
    total: int
    url_counts: RDD  # (url, requests) of responses over the size limit


def large_responses(totals: dict, counts: RDD) -> LargeResponses:
    """(4) Requests with more than ``LARGE_RESPONSE_MIN_BYTES`` response bytes (as counted by
    ``count_requests``): count, and per URL."""
    return LargeResponses(totals[URL_LARGE].requests, _of_kind(counts, URL_LARGE))


def top_requested_urls(totals: dict, n: int = 1) -> list[tuple[str, int]]:
    """(5) The ``n`` URLs with most requests (any status); element 0 is *the* most requested URL."""
    return totals[URL].top[:n]


def top_404_urls(totals: dict, n: int = 1) -> list[tuple[str, int]]:
    """(6) The ``n`` URLs with most 404 responses; element 0 is *the* most-404 URL ([] if no 404)."""
    return totals[URL_404].top[:n]
