"""The six analyses on a dozen hand-written lines; expected answers counted by hand below."""
import json

import pytest

from spark_apps.access_logs import analyses
from spark_apps.access_logs.batches import parse_partition
from spark_apps.access_logs.ingest import count_and_account, summarise_day

pytestmark = pytest.mark.spark

T = "[15/Jan/2024:10:00:00 +0000]"
LINES = [
    f'10.0.0.1 - - {T} "GET /index.html HTTP/1.1" 200 1000 "-" "Mozilla/5.0"',            # L1
    f'10.0.0.1 - - {T} "GET /index.html HTTP/1.1" 200 6000 "-" "Mozilla/5.0"',            # L2 large
    f'10.0.0.2 - - {T} "GET /missing HTTP/1.1" 404 200 "-" "curl/8"',                     # L3
    f'2001:db8::1 - - {T} "GET /missing HTTP/1.1" 404 - "-" "curl/8"',                    # L4 IPv6, '-' bytes
    f'2001:db8::1 - - {T} "GET /index.html" 200 -',                                       # L5 CLF, no HTTP version
    f'10.0.0.3 - - {T} "GET /a b.html HTTP/1.1" 200 7000 "-" "ua \\"quoted\\""',          # L6 space in URL, large
    f'10.0.0.3 - - {T} "POST /login HTTP/1.1" 403 300 "http://x/" "Mozilla"',             # L7
    f'10.0.0.1 - - {T} "GET /caf\ufffd.html HTTP/1.1" 200 5000 "-" "Mozilla"',            # L8 exactly 5000: not large
    f'10.0.0.2 - - {T} "-" 408 - "-" "-"',                                                # L9 no request: url "-"
    f'10.0.0.4 - - {T} "GET /big.iso HTTP/1.1" 200 5001 "-" "Wget"',                      # L10 large
    f'10.0.0.5 - - {T} "GET /trunc',                                                      # L11 truncated: fails
    "hello world",                                                                        # L12 junk: fails
    f'10.0.0.2 - - {T} "GET /other HTTP/1.1" 404 100 "-" "curl/8"',                       # L13
]


def _batches(spark):
    # Three partitions of 4/4/5 lines, batches of 2 lines: keys spread over many
    # batches and partitions, so the per-batch and per-partition combines both matter.
    return spark.sparkContext.parallelize(LINES, 3).mapPartitionsWithIndex(
        lambda index, lines: parse_partition("test.log", index, lines, batch_lines=2))


@pytest.fixture(scope="module")
def counts(spark):
    """The thirteen lines' key counts (what the six analyses read)."""
    counts = analyses.count_requests(_batches(spark)).cache()
    yield counts
    counts.unpersist()


@pytest.fixture(scope="module")
def totals(counts):
    """Their summary, with the top 10 of every ranking."""
    return analyses.totals(counts, 10)


def test_two_of_thirteen_lines_fail(spark):
    batches = _batches(spark).collect()
    assert sum(b.requests for b in batches) == 11  # L11 and L12 do not parse
    assert sum(b.lines for b in batches) == 13
    assert [(b.file_partition, line, reason) for b in batches for line, reason, _raw in b.quarantined] == [
        (2, 3, "unterminated request quote (truncated line?)"),  # L11: third line of partition 2
        (2, 4, "missing client, ident or user field"),  # L12
    ]


def test_unique_clients_and_top_clients(totals):
    stats = analyses.client_stats(totals, top_n=3)
    # 10.0.0.1: L1 L2 L8 = 3; 10.0.0.2: L3 L9 L13 = 3; 2001:db8::1: L4 L5 = 2;
    # 10.0.0.3: L6 L7 = 2; 10.0.0.4: L10 = 1  -> 5 clients.
    assert stats.unique_ips == 5
    # ties by ip ascending: "10.0.0.1" < "10.0.0.2"; "10.0.0.3" < "2001:db8::1"
    assert stats.top_clients == [("10.0.0.1", 3), ("10.0.0.2", 3), ("10.0.0.3", 2)]


def test_url_200_counts(totals, counts):
    # 200s: L1 L2 L5 /index.html, L6 "/a b.html", L8 /caf\ufffd.html, L10 /big.iso
    url_200 = analyses.url_200_counts(totals, counts)
    assert sorted(url_200.url_counts.collect()) == [
        ("/a b.html", 1), ("/big.iso", 1), ("/caf\ufffd.html", 1), ("/index.html", 3)]
    assert (url_200.distinct_urls, url_200.requests) == (4, 6)


def test_client_errors(totals):
    errors = analyses.client_errors(totals)
    # 404: L3 L4 L13; 403: L7; 408: L9
    assert errors.total == 5
    assert errors.by_status == {403: 1, 404: 3, 408: 1}


def test_large_responses(totals, counts):
    large = analyses.large_responses(totals, counts)
    # > 5000: L2 6000, L6 7000, L10 5001 (L8 has exactly 5000)
    assert large.total == 3
    assert sorted(large.url_counts.collect()) == [("/a b.html", 1), ("/big.iso", 1), ("/index.html", 1)]


def test_most_requested_urls(totals):
    # /index.html L1 L2 L5 = 3, /missing L3 L4 = 2, then six URLs with 1 request sorted as
    # strings: "-" (L9) < "/a b.html" < ...
    assert analyses.top_requested_urls(totals, 1) == [("/index.html", 3)]
    assert analyses.top_requested_urls(totals, 4) == [
        ("/index.html", 3), ("/missing", 2), ("-", 1), ("/a b.html", 1)]


def test_most_404_urls(totals):
    # 404: /missing L3 L4 = 2, /other L13 = 1
    assert analyses.top_404_urls(totals, 5) == [("/missing", 2), ("/other", 1)]


def test_one_pass_counts_every_kind_by_hand():
    batches = list(parse_partition("test.log", 0, LINES, batch_lines=5))
    counts = {}
    for (kind, key), n in analyses.count_partition(batches):
        assert (kind, key) not in counts  # one record per key: the batches are merged in the partition
        counts.setdefault(kind, {})[key] = n
    assert counts[analyses.CLIENT] == {"10.0.0.1": 3, "10.0.0.2": 3, "2001:db8::1": 2, "10.0.0.3": 2, "10.0.0.4": 1}
    assert counts[analyses.URL] == {"/index.html": 3, "/missing": 2, "/a b.html": 1, "/login": 1,
                                    "/caf\ufffd.html": 1, "-": 1, "/big.iso": 1, "/other": 1}
    assert counts[analyses.URL_404] == {"/missing": 2, "/other": 1}
    assert counts[analyses.URL_LARGE] == {"/index.html": 1, "/a b.html": 1, "/big.iso": 1}
    assert counts[analyses.STATUS_4XX] == {403: 1, 404: 3, 408: 1}
    assert sum(counts[analyses.URL_200].values()) == 6


def test_count_and_account_reads_the_batches_once_for_counts_and_lines(spark):
    parsed = spark.sparkContext.accumulator(0)

    def counted(batch):
        parsed.add(1)
        return batch

    day = count_and_account(_batches(spark).map(counted))
    try:
        totals, lines = summarise_day(day, 2)  # one job: the counts' summary and the line counts
        assert totals == analyses.totals(analyses.count_requests(_batches(spark)), 2)
        assert analyses.client_stats(totals, 2) == analyses.ClientStats(5, [("10.0.0.1", 3), ("10.0.0.2", 3)])
        assert analyses.client_errors(totals).by_status == {403: 1, 404: 3, 408: 1}  # every 4xx code, not 2
        assert (lines.total_lines, lines.quarantined_lines) == (13, 2)
        assert lines.reasons == {"unterminated request quote (truncated line?)": 1,
                                 "missing client, ident or user field": 1}
        assert [json.loads(row)["line"] for row in lines.quarantine.collect()] == [11, 12]
        assert sorted(analyses.url_200_counts(totals, day.counts).url_counts.collect())[-1] == ("/index.html", 3)
        assert parsed.value == 7  # 2 + 2 + 3 batches, each parsed once for all of the above
    finally:
        day.unpersist()


def test_rankings_on_empty_input(spark):
    empty = analyses.totals(analyses.count_requests(spark.sparkContext.parallelize([], 2)), 3)
    assert analyses.top_404_urls(empty, 3) == []
    assert analyses.client_stats(empty, 3) == analyses.ClientStats(0, [])
    assert analyses.client_errors(empty) == analyses.ClientErrors(0, {})


def _batches_of_facts(spark, facts, partitions):
    """Batches straight from (ip, url, status, bytes) tuples, no log text needed."""
    lines = [f'{ip} - - {T} "GET {url} HTTP/1.1" {status} {size} "-" "-"' for ip, url, status, size in facts]
    return spark.sparkContext.parallelize(lines, partitions).mapPartitionsWithIndex(
        lambda index, part: parse_partition("t.log", index, part, batch_lines=100))


def test_top_n_keeps_ranking_when_partitions_hold_many_keys(spark):
    # More keys per partition than the summariser keeps before pruning (4n+64):
    # the pruning must not lose the true top.
    ips = [f"10.0.{i // 256}.{i % 256}" for i in range(500)] + ["10.9.9.9"] * 7 + ["10.8.8.8"] * 7
    counts = analyses.count_requests(_batches_of_facts(spark, [(ip, "/", 200, 1) for ip in ips], 2))
    stats = analyses.client_stats(analyses.totals(counts, 3), top_n=3)
    assert stats.unique_ips == 502
    assert stats.top_clients == [("10.8.8.8", 7), ("10.9.9.9", 7), ("10.0.0.0", 1)]
