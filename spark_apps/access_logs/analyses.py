"""The six access-log analyses, as plain functions over an RDD of request facts.

The job parses each line once into a compact *request fact* tuple
``(ip, url, status, bytes)`` (only what the analyses read, as a plain tuple because
PySpark pickles every cached record on each pass and plain tuples are the cheapest
to pickle), caches that RDD and runs all six functions on it.

Scaling rules followed everywhere:

* counting is ``reduceByKey`` after a per-partition ``Counter`` (the Counter does
  the map-side combine in C, so Python does one dict update per record);
* rankings are ``takeOrdered`` over the per-key counts, so the driver only ever
  holds N items; no ``countByValue`` and no ``collect`` of an unbounded key set.
  The only collected key set is 4xx status codes, bounded by 400..499.

Tie rule for every ranking: count descending, then key (URL or client) ascending
by plain string comparison, so reruns always give the same order.
"""
from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from operator import add

from pyspark import RDD

from spark_apps.access_logs.parser import ParsedLine

# Positions in a request-fact tuple.
IP, URL, STATUS, BYTES = 0, 1, 2, 3

LARGE_RESPONSE_MIN_BYTES = 5000  # "larger than 5000 bytes": strictly more than this


def request_fact(parsed: ParsedLine) -> tuple:
    """The part of a parsed line the analyses read: ``(ip, url, status, bytes)``."""
    return (parsed.ip, parsed.url, parsed.status, parsed.bytes)


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


def _count_by(facts: RDD, key_of_partition) -> RDD:
    """``reduceByKey`` counts where ``key_of_partition(records)`` yields the keys to count."""
    return facts.mapPartitions(lambda records: Counter(key_of_partition(records)).items()).reduceByKey(add)


@dataclass(frozen=True)
class ClientStats:
    unique_ips: int
    top_clients: list  # [(ip, requests)] ranked by the module's tie rule


def client_stats(facts: RDD, top_n: int) -> ClientStats:
    """(1) Number of distinct client IPs and the ``top_n`` clients by requests."""
    per_ip = _count_by(facts, lambda records: (r[IP] for r in records))
    unique, top = _count_keys_and_top(per_ip, top_n)
    return ClientStats(unique, top)


def url_200_counts(facts: RDD) -> RDD:
    """(2) ``(url, requests)`` for every URL answered with status 200 (lazy RDD: it can be large)."""
    return _count_by(facts, lambda records: (r[URL] for r in records if r[STATUS] == 200))


@dataclass(frozen=True)
class ClientErrors:
    total: int
    by_status: dict  # {status: responses}, only statuses that occurred


def client_errors(facts: RDD) -> ClientErrors:
    """(3) Number of 4xx responses, in total and per status code."""
    per_status = _count_by(facts, lambda records: (r[STATUS] for r in records if 400 <= r[STATUS] <= 499))
    by_status = dict(sorted(per_status.collect()))  # at most 100 keys (400..499)
    return ClientErrors(sum(by_status.values()), by_status)


@dataclass(frozen=True)
class LargeResponses:
    total: int
    url_counts: RDD  # (url, requests); rereading it reuses this analysis' shuffle output


def large_responses(facts: RDD, min_bytes: int = LARGE_RESPONSE_MIN_BYTES) -> LargeResponses:
    """(4) Requests with more than ``min_bytes`` response bytes: count, and per URL.

    The total is taken from the per-URL counts so the records are scanned once;
    writing ``url_counts`` later only rereads the (small) shuffle output.
    """
    per_url = _count_by(facts, lambda records: (r[URL] for r in records if r[BYTES] > min_bytes))
    return LargeResponses(per_url.values().sum(), per_url)


def top_requested_urls(facts: RDD, n: int = 1) -> list[tuple[str, int]]:
    """(5) The ``n`` URLs with most requests (any status); element 0 is *the* most requested URL."""
    per_url = _count_by(facts, lambda records: (r[URL] for r in records))
    return per_url.takeOrdered(n, key=_ranking_key)


def top_404_urls(facts: RDD, n: int = 1) -> list[tuple[str, int]]:
    """(6) The ``n`` URLs with most 404 responses; element 0 is *the* most-404 URL ([] if no 404)."""
    per_url = _count_by(facts, lambda records: (r[URL] for r in records if r[STATUS] == 404))
    return per_url.takeOrdered(n, key=_ranking_key)
