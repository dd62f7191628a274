"""End to end: a small day folder -> MySQL tables, quarantine and lake summary; reruns are idempotent."""
import gzip
import json
from datetime import date

import pytest

from spark_apps.access_logs import job, reader
from spark_apps.common import data_quality, lake

pytestmark = pytest.mark.spark

DAY = date(2024, 1, 15)
T = "[15/Jan/2024:10:00:00 +0000]"
LONG_URL = "/search?q=" + "x" * 300


def _ok(ip, url, status, size):
    return f'{ip} - - {T} "GET {url} HTTP/1.1" {status} {size} "-" "Mozilla/5.0"'.encode("latin-1")


def _write_day(folder):
    folder.mkdir(parents=True)
    # Plain file cut into several splits (see two_runs), with bad lines in the first and in a
    # later split: their line numbers must still be counted per file.
    plain = [_ok("10.0.0.1", "/index.html", 200, 1000) for _ in range(400)]
    plain[2] = b'10.0.0.9 - - [15/Jan/2024:10:00:00 +0000] "GET /trunc'          # line 3
    plain[349] = b""                                                              # line 350
    plain[350] = _ok("10.0.0.2", "/caf\xe9.html", 200, 9000)                      # raw 0xE9: invalid UTF-8
    plain[351] = _ok("10.0.0.3", LONG_URL, 200, 6000)
    (folder / "web-1.log").write_bytes(b"\n".join(plain) + b"\n")
    gz = [_ok("2001:db8::1", "/missing", 404, "-"), _ok("2001:db8::1", "/missing", 404, 10),
          b"junk", _ok("10.0.0.1", "/index.html", 200, 1000)]
    with gzip.open(folder / "web-2.log.gz", "wb") as handle:
        handle.write(b"\n".join(gz) + b"\n")
    (folder / "README.txt").write_text("not a log")
    (folder / "_SUCCESS").write_text("")


def _table(db, table):
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{table}` WHERE log_date = %s ORDER BY 2, 3", (DAY,))
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def two_runs(spark, results_db, tmp_path_factory):
    base = tmp_path_factory.mktemp("access_logs")
    folder = base / "raw" / f"date={DAY}"
    _write_day(folder)
    args = (spark, results_db, f"file://{folder}", DAY, f"file://{base}/reports", f"file://{base}/quarantine", 3)
    with pytest.MonkeyPatch.context() as patch:
        # Splits of 4 kB read 1 kB at a time: web-1.log (about 30 kB) is read by several tasks in
        # many blocks, and its line numbers must still count from the start of the file.
        patch.setattr(reader, "MIN_SPLIT_BYTES", 4096)
        patch.setattr(reader, "MAX_SPLIT_BYTES", 4096)
        patch.setattr(reader, "CHUNK_BYTES", 1024)
        first = job.run(*args)
        tables_after_first = {t: _table(results_db, t) for t in job.TABLES}
        second = job.run(*args)
        tables_after_second = {t: _table(results_db, t) for t in job.TABLES}
    return base, first, second, tables_after_first, tables_after_second


def test_summary_numbers(two_runs):
    _, summary, _, _, _ = two_runs
    # web-1.log: 400 lines, 2 bad (line 3 truncated, line 350 empty); web-2.log.gz: 4 lines, 1 bad
    assert (summary["input_files"], summary["total_lines"], summary["quarantined_lines"]) == (2, 404, 3)
    assert summary["ignored_files"][0].endswith("README.txt") and len(summary["ignored_files"]) == 1
    # web-1.log good lines: 396 x 10.0.0.1 /index.html, 10.0.0.2 caf\ufffd (9000 B), 10.0.0.3 long URL (6000 B);
    # web-2.log.gz good lines: 2 x 2001:db8::1 /missing 404, 10.0.0.1 /index.html
    assert summary["unique_client_ips"] == 4
    # 10.0.0.2 and 10.0.0.3 tie at 1 request: ip ascending
    assert summary["top_clients"] == [["10.0.0.1", 397], ["2001:db8::1", 2], ["10.0.0.2", 1]]
    # 200s: 397 /index.html + caf + long URL
    assert summary["status_200_requests"] == 399 and summary["status_200_distinct_urls"] == 3
    assert summary["client_errors_by_status"] == {"404": 2} and summary["client_error_responses"] == 2
    assert summary["large_responses"] == 2  # 9000 and 6000 bytes
    assert (summary["most_requested_url"], summary["most_requested_url_requests"]) == ("/index.html", 397)
    assert (summary["most_404_url"], summary["most_404_url_responses"]) == ("/missing", 2)


def test_rerun_gives_identical_rows_without_duplicates(two_runs):
    _, first, second, tables_first, tables_second = two_runs
    assert tables_first == tables_second
    assert first["rows_written"] == second["rows_written"]
    assert len(tables_first["access_log_url_200_counts"]) == 3
    assert len(tables_first["access_log_daily_summary"]) == 1


def test_long_and_non_utf8_urls_are_stored(two_runs):
    _, _, _, tables, _ = two_runs
    by_url = {row[2]: row for row in tables["access_log_url_200_counts"]}  # log_date, sha1, url, truncated, n
    assert by_url["/caf\ufffd.html"][3:] == (0, 1)
    long_row = by_url[LONG_URL[:255]]
    assert long_row[3] == 1 and long_row[1] == job.url_columns(LONG_URL)[0]


def test_quarantine_lists_bad_lines_with_file_and_line_number(spark, two_runs):
    base, summary, _, _, _ = two_runs
    folder = summary["quarantine_uri"]
    text = "\n".join(
        lake.read_text(spark, f"{folder}/{name}") for name in ("part-00000",) if lake.exists(spark, f"{folder}/{name}"))
    bad = [json.loads(line) for line in text.splitlines()]
    assert [(b["file"].rsplit("/", 1)[1], b["line"], b["reason"]) for b in bad] == [
        ("web-1.log", 3, "unterminated request quote (truncated line?)"),
        ("web-1.log", 350, "empty line"),
        ("web-2.log.gz", 3, "missing client, ident or user field"),
    ]
    assert bad[2]["raw"] == "junk"


def test_summary_json_in_lake(spark, two_runs):
    base, summary, _, _, _ = two_runs
    stored = json.loads(lake.read_text(spark, lake.join(f"file://{base}/reports", f"date={DAY}", "summary.json")))
    assert stored["total_lines"] == 404 and stored["most_404_url"] == "/missing"


def test_tables_hold_the_day(two_runs):
    _, _, _, tables, _ = two_runs
    assert [row[1:] for row in tables["access_log_4xx_by_status"]] == [(404, 2)]
    assert [row[1:] for row in tables["access_log_top_clients"]] == [
        (1, "10.0.0.1", 397), (2, "2001:db8::1", 2), (3, "10.0.0.2", 1)]
    top = [row[1:3] + row[4:] for row in tables["access_log_top_urls"]]
    assert top[0] == ("all_requests", 1, "/index.html", 0, 397)
    assert ("status_404", 1, "/missing", 0, 2) in top


def test_data_quality_row_after_two_runs(two_runs, results_db):
    base, _, _, _, _ = two_runs
    conn = results_db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM data_quality_runs WHERE pipeline = 'access_logs' AND run_key = %s",
                        (DAY.isoformat(),))
            assert cur.fetchone()[0] == 1  # the rerun replaced the first run's row
    finally:
        conn.close()
    # 404 lines, 3 bad: web-1.log line 3 truncated, line 350 empty; web-2.log.gz line 3 junk
    assert data_quality.read_run(results_db, "access_logs", DAY.isoformat()) == {
        "input_uri": f"file://{base}/raw/date={DAY}", "total_rows": 404, "bad_rows": 3,
        "reasons": {"empty line": 1, "missing client, ident or user field": 1,
                    "unterminated request quote (truncated line?)": 1}}


def test_main_rejects_bad_date():
    with pytest.raises(SystemExit):
        job.main(["--input", "file:///x", "--log-date", "15/01/2024", "--summary-uri", "file:///s",
                  "--quarantine-uri", "file:///q"])
