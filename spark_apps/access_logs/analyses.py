"""The six access-log analyses, as plain functions over an RDD of ``RequestBatch``.

The job parses each line once into column batches (``batches.RequestBatch``:
client and URL dictionary-encoded, status and bytes as numpy arrays), caches that
RDD and runs all six functions on it.

Scaling rules followed everywhere:

* counting is ``reduceByKey`` after a per-partition combine: inside a partition
  each batch is counted with ``numpy.bincount`` over its codes and the partition
  emits one ``(key, count)`` per distinct key, so Python does per-key work, not
  per-request work;
* rankings are ``takeOrdered`` over the per-key counts, so the driver only ever
  holds N items; no ``countByValue`` and no ``collect`` of an unbounded key set.
  The only collected key set is 4xx status codes, bounded by 400..499.

Tie rule for every ranking: count descending, then key (URL or client) ascending
by plain string comparison, so reruns always give the same order.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from operator import add
from typing import Callable

import numpy as np
from pyspark import RDD

from spark_apps.access_logs.batches import RequestBatch

LARGE_RESPONSE_MIN_BYTES = 5000  # "larger than 5000 bytes": strictly more than this


def _ranking_key(pair):
    key, count = pair
    return (-count, key)


def _count_keys_and_top(counts: RDD, n: int) -> tuple[int, list[tuple[str, int]]]:
    """Number of keys and the top ``n`` (key, count) pairs, in one Spark job.

    Each partition sends (its key count, its own top n); the driver merges
    partition results, so it never sees more than n items per partition.
    """

    def summarise(pairs):
        size = 0
        top: list = []
        for pair in pairs:
            size += 1
            top.append(pair)
            if len(top) > 4 * n + 64:  # bound memory: keep only candidates
                top = heapq.nsmallest(n, top, key=_ranking_key)
        yield size, heapq.nsmallest(n, top, key=_ranking_key)

    total = 0
    candidates: list = []
    for size, top in counts.mapPartitions(summarise).collect():
        total += size
        candidates.extend(top)
    return total, heapq.nsmallest(n, candidates, key=_ranking_key)


Selector = Callable[[RequestBatch], "np.ndarray | None"]  # boolean mask over a batch's requests, None = all


def _count_by(batches: RDD, column: str, where: Selector) -> RDD:
    """``(key, requests)`` counted with ``reduceByKey``; ``column`` is ``"ip"`` or ``"url"``.

    ``where(batch)`` picks the requests to count (a boolean mask, or None for all).
    """

    def count_partition(partition):
        totals: dict = {}
        for batch in partition:
            keys = batch.ips if column == "ip" else batch.urls
            codes = batch.ip_codes if column == "ip" else batch.url_codes
            mask = where(batch)
            if mask is not None:
                codes = codes[mask]
            counts = np.bincount(codes, minlength=len(keys))
            for code in np.flatnonzero(counts).tolist():
                key = keys[code]
                totals[key] = totals.get(key, 0) + int(counts[code])
        return iter(totals.items())

    return batches.mapPartitions(count_partition).reduceByKey(add)


def _all(batch):
    return None


@dataclass(frozen=True)
class ClientStats:
    unique_ips: int
    top_clients: list  # [(ip, requests)] ranked by the module's tie rule


def client_stats(batches: RDD, top_n: int) -> ClientStats:
    """(1) Number of distinct client IPs and the ``top_n`` clients by requests."""
    per_ip = _count_by(batches, "ip", _all)
    unique, top = _count_keys_and_top(per_ip, top_n)
    return ClientStats(unique, top)


def url_200_counts(batches: RDD) -> RDD:
    """(2) ``(url, requests)`` for every URL answered with status 200 (lazy RDD: it can be large)."""
    return _count_by(batches, "url", lambda b: b.status == 200)


@dataclass(frozen=True)
class ClientErrors:
    total: int
    by_status: dict  # {status: responses}, only statuses that occurred


def client_errors(batches: RDD) -> ClientErrors:
    """(3) Number of 4xx responses, in total and per status code."""

    def count_partition(partition):
        counts = np.zeros(100, dtype=np.int64)  # index = status - 400
        for batch in partition:
            status = batch.status[(batch.status >= 400) & (batch.status <= 499)]
            counts += np.bincount(status - 400, minlength=100)
        return ((400 + i, int(counts[i])) for i in np.flatnonzero(counts).tolist())

    per_status = batches.mapPartitions(count_partition).reduceByKey(add)
    by_status = dict(sorted(per_status.collect()))  # at most 100 keys (400..499)
    return ClientErrors(sum(by_status.values()), by_status)


@dataclass(frozen=True)
class LargeResponses:
    total: int
    url_counts: RDD  # (url, requests); rereading it reuses this analysis' shuffle output


def large_responses(batches: RDD, min_bytes: int = LARGE_RESPONSE_MIN_BYTES) -> LargeResponses:
    """(4) Requests with more than ``min_bytes`` response bytes: count, and per URL.

    The total is taken from the per-URL counts so the records are scanned once;
    writing ``url_counts`` later only rereads the (small) shuffle output.
    """
    per_url = _count_by(batches, "url", lambda b: b.bytes > min_bytes)
    return LargeResponses(per_url.values().sum(), per_url)


def top_requested_urls(batches: RDD, n: int = 1) -> list[tuple[str, int]]:
    """(5) The ``n`` URLs with most requests (any status); element 0 is *the* most requested URL."""
    per_url = _count_by(batches, "url", _all)
    return per_url.takeOrdered(n, key=_ranking_key)


def top_404_urls(batches: RDD, n: int = 1) -> list[tuple[str, int]]:
    """(6) The ``n`` URLs with most 404 responses; element 0 is *the* most-404 URL ([] if no 404)."""
    per_url = _count_by(batches, "url", lambda b: b.status == 404)
    return per_url.takeOrdered(n, key=_ranking_key)
