"""The generator is deterministic, and the job's numbers on a generated day match an
independent count made from the generator's own truth (no parser involved)."""
import hashlib
from collections import Counter
from datetime import date

import pytest

from include.generators.access_logs import generate_lines, write_day
from spark_apps.access_logs import job

DAY = date(2024, 2, 1)  # not the day used by tests/spark_apps/access_logs/test_job.py
LINES, SEED, TOP_N = 20000, 42, 5


def _ranked(counter, n):
    return [[key, count] for key, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def test_same_seed_same_bytes_other_seed_other_bytes():
    def digest(seed):
        return hashlib.sha256(b"\n".join(raw for raw, _ in generate_lines(DAY, 2000, seed))).hexdigest()

    assert digest(3) == digest(3)
    assert digest(3) != digest(4)


def test_generated_day_has_the_advertised_mix():
    truth = [t for _, t in generate_lines(DAY, LINES, SEED, malformed_share=0.01)]
    valid = [t for t in truth if t is not None]
    assert 0.005 < 1 - len(valid) / LINES < 0.02
    assert any(":" in t.ip for t in valid)  # IPv6 clients
    assert any(t.bytes == 0 for t in valid)  # '-' byte counts
    statuses = Counter(t.status for t in valid)
    assert statuses[200] / len(valid) > 0.7 and statuses[404] > 0 and statuses[500] > 0
    urls = Counter(t.url for t in valid)
    # Zipf: the hottest URL alone gets far more than an even share of 2000 URLs
    assert urls.most_common(1)[0][1] > 20 * len(valid) / 2000


@pytest.fixture(scope="module")
def generated_run(spark, results_db, tmp_path_factory):
    base = tmp_path_factory.mktemp("generated_access_logs")
    write_day(base / "raw", DAY, LINES, files=2, gzip_files=True, seed=SEED, malformed_share=0.01)
    summary = job.run(spark, results_db, f"file://{base}/raw/date={DAY}", DAY,
                      f"file://{base}/reports", f"file://{base}/quarantine", TOP_N)
    return summary


@pytest.mark.spark
def test_job_matches_independent_count(generated_run, results_db):
    truth = [t for _, t in generate_lines(DAY, LINES, SEED, malformed_share=0.01)]
    valid = [t for t in truth if t is not None]
    clients = Counter(t.ip for t in valid)
    urls = Counter(t.url for t in valid)
    urls_200 = Counter(t.url for t in valid if t.status == 200)
    urls_404 = Counter(t.url for t in valid if t.status == 404)
    errors = Counter(t.status for t in valid if 400 <= t.status <= 499)
    expected = {
        "total_lines": LINES,
        "quarantined_lines": LINES - len(valid),
        "unique_client_ips": len(clients),
        "top_clients": _ranked(clients, TOP_N),
        "status_200_requests": sum(urls_200.values()),
        "status_200_distinct_urls": len(urls_200),
        "client_error_responses": sum(errors.values()),
        "client_errors_by_status": {str(k): v for k, v in sorted(errors.items())},
        "large_responses": sum(1 for t in valid if t.bytes > 5000),
        "top_urls": _ranked(urls, TOP_N),
        "top_404_urls": _ranked(urls_404, TOP_N),
    }
    assert {key: generated_run[key] for key in expected} == expected

    conn = results_db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*), SUM(requests) FROM access_log_url_200_counts WHERE log_date = %s", (DAY,))
            assert cur.fetchone() == (len(urls_200), sum(urls_200.values()))
    finally:
        conn.close()
