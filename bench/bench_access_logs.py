"""Benchmark the access-log analyses on a generated day.

    .venv/bin/python bench/bench_access_logs.py --lines 1000000 [--lines 10000000]

For each size: generates the day once (kept under --data-dir for reuse), then on
local[2] measures

* Spark:    what the job does: one Spark job that parses every line, counts it by every key
            the six analyses need and summarises those counts into the six answers and the
            line totals, then the listing of the quarantined lines (timed apart too),
* awk:      one single-pass mawk script computing the same six answers on one core (a
            speed reference: it splits on spaces, so it is approximate for URLs with spaces,
            which are 0.1% of generated lines),
* DuckDB:   the same six answers from the raw files with DuckDB on the same two cores (read
            as one text column, fields cut with string functions, parsed once into a temporary
            table, then six queries; approximate like awk, and it drops the lines that are not
            valid UTF-8, 0.02% of generated lines),

and prints a markdown table with lines/second, peak memory of this process plus all its
children (the Spark JVM and Python workers; for awk and DuckDB their own process). The load average (1 min) before each size goes into the table too.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from include.generators.access_logs import write_day  # noqa: E402
from spark_apps.access_logs import job  # noqa: E402
from spark_apps.access_logs.ingest import count_and_account, parse_files, summarise_day  # noqa: E402

DAY = date(2024, 1, 15)
AWK_SIX_ANALYSES = r"""
{ ip[$1]++; url[$7]++; s = $9
  if (s == 200) ok[$7]++
  if (s >= 400 && s < 500) { e4++; e[s]++ }
  if ($10 != "-" && $10 + 0 > 5000) { big++; bigurl[$7]++ }
  if (s == 404) nf[$7]++ }
END { for (k in ip) nip++; for (k in ok) nok++; for (k in bigurl) nbig++
      best = ""; bn = 0; for (k in url) if (url[k] > bn) { bn = url[k]; best = k }
      b4 = ""; n4 = 0; for (k in nf) if (nf[k] > n4) { n4 = nf[k]; b4 = k }
      print nip, nok, e4, big, nbig, best, bn, b4, n4 }
"""


DUCKDB_SIX_ANALYSES = r"""
import json, sys, time
import duckdb
files = json.loads(sys.argv[1])
con = duckdb.connect()
con.execute("SET threads = 2")
start = time.perf_counter()
con.execute('''
CREATE TEMP TABLE requests AS
WITH lines AS (
  SELECT line FROM read_csv($files, columns = {'line': 'VARCHAR'}, delim = $delim, quote = '', escape = '',
                            header = false, auto_detect = false, strict_mode = false, ignore_errors = true)
), fields AS (
  SELECT split_part(line, ' ', 1) AS ip, split_part(line, '"', 2) AS request,
         string_split(trim(split_part(line, '"', 3)), ' ') AS rest FROM lines
), typed AS (
  SELECT ip, request, TRY_CAST(rest[1] AS SMALLINT) AS status,
         CASE WHEN rest[2] = '-' THEN 0 ELSE TRY_CAST(rest[2] AS BIGINT) END AS bytes FROM fields
), urls AS (  -- request line minus method and protocol, once per distinct request
  SELECT request, CASE WHEN regexp_matches(request, '^[A-Za-z-]+ .* HTTP/[^ ]*$')
                       THEN regexp_extract(request, '^[^ ]+ (.*) [^ ]+$', 1)
                       WHEN regexp_matches(request, '^[A-Za-z-]+ .') THEN regexp_extract(request, '^[^ ]+ (.*)$', 1)
                       ELSE request END AS url
  FROM (SELECT DISTINCT request FROM typed)
)
SELECT ip, url, status, bytes FROM typed JOIN urls USING (request) WHERE status IS NOT NULL AND bytes IS NOT NULL
''', {"files": files, "delim": "\x01"})
answers = [con.execute(q).fetchall() for q in (
    "SELECT COUNT(DISTINCT ip) FROM requests",
    "SELECT ip, COUNT(*) AS n FROM requests GROUP BY ip ORDER BY n DESC, ip LIMIT 10",
    "SELECT COUNT(DISTINCT url), COUNT(*) FROM requests WHERE status = 200",
    "SELECT status, COUNT(*) FROM requests WHERE status BETWEEN 400 AND 499 GROUP BY status ORDER BY status",
    "SELECT COUNT(*), COUNT(DISTINCT url) FROM requests WHERE bytes > 5000",
    "SELECT url, COUNT(*) AS n FROM requests GROUP BY url ORDER BY n DESC, url LIMIT 10",
    "SELECT url, COUNT(*) AS n FROM requests WHERE status = 404 GROUP BY url ORDER BY n DESC, url LIMIT 10")]
print(time.perf_counter() - start, answers[0][0][0], answers[2][0][0], sum(n for _, n in answers[3]),
      answers[4][0][0], answers[5][0], answers[6][0] if answers[6] else None)
"""


def run_with_peak(cmd: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS of the process (sampled every 0.1 s) and stdout of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed: {err[-2000:]}")
    return seconds, peak, out


class PeakMemory:
    """Samples RSS of this process and all descendants (JVM, Python workers) every 0.2 s."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self):
        self.peak = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


TOP_N = 10  # as the job's default --top-n


def six_analyses(totals, counts, top_n=TOP_N):
    """The job's own six analyses, reduced to the headline numbers."""
    result = job.six_analyses(totals, counts, top_n)
    return (result["clients"].unique_ips, result["distinct_200"], result["errors"].total, result["large"].total,
            result["top_urls"][0], result["top_404"][0])


PHASES: dict = {}  # seconds of the last run: the job that answers, the quarantine listing


def run_job_passes(spark, files):
    start = time.perf_counter()
    day = count_and_account(parse_files(spark, files))
    totals, lines = summarise_day(day, TOP_N)  # the job's one job: parse, count, summarise, count lines
    result = six_analyses(totals, day.counts)
    answered = time.perf_counter()
    lines.quarantine.count()
    PHASES.update(answers=answered - start, quarantine=time.perf_counter() - answered)
    day.unpersist()
    return result, lines.total_lines


def timed(label, fn, *args):
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = fn(*args)
        seconds = time.perf_counter() - start
    print(f"{label}: {seconds:.1f}s {result}", file=sys.stderr, flush=True)
    return seconds, memory.peak


def day_files(data_dir: str, lines: int, files: int) -> tuple[list[str], float]:
    """The generated day of ``lines`` lines (generated once, then reused): file URIs and size in MB."""
    base = Path(data_dir) / f"{lines}"
    folder = base / f"date={DAY}"
    if not (folder / "_GENERATED").exists():
        print(f"generating {lines} lines into {folder} ...", file=sys.stderr, flush=True)
        write_day(base, DAY, lines, files=files, seed=1)
        (folder / "_GENERATED").write_text("")
    paths = sorted(folder.glob("*.log"))
    return [f"file://{p}" for p in paths], sum(p.stat().st_size for p in paths) / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, action="append", help="lines per day (repeatable); default 1000000")
    parser.add_argument("--files", type=int, default=4, help="log files per day (one per web server)")
    parser.add_argument("--data-dir", default="/tmp/bench_access_logs")
    parser.add_argument("--warmup-lines", type=int, default=50_000)
    args = parser.parse_args(argv)
    sizes = args.lines or [1_000_000]

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("bench-access-logs")
             .config("spark.driver.memory", "4g").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    # Warm-up on a small day: starts the Python workers (importing numpy and pyarrow
    # costs them ~1 s each) and JIT-compiles the JVM's line reader, so that neither
    # is charged to whichever measured run happens to come first.
    timed("warm-up", run_job_passes, spark, day_files(args.data_dir, args.warmup_lines, args.files)[0])
    rows = []
    for lines in sizes:
        files, size_mb = day_files(args.data_dir, lines, args.files)
        load = os.getloadavg()[0]
        spark_s, spark_mem = timed("spark", run_job_passes, spark, files)
        paths = [f.removeprefix("file://") for f in files]
        awk_s, awk_mem, awk_out = run_with_peak(["mawk", AWK_SIX_ANALYSES, *paths], {**os.environ, "LC_ALL": "C"})
        print(f"awk: {awk_s:.1f}s {awk_out.strip()}", file=sys.stderr, flush=True)
        duck_s, duck_mem, duck_out = run_with_peak([sys.executable, "-c", DUCKDB_SIX_ANALYSES, json.dumps(paths)])
        print(f"duckdb: {duck_s:.1f}s {duck_out.strip()}", file=sys.stderr, flush=True)
        rows.append((lines, size_mb, spark_s, dict(PHASES), spark_mem, awk_s, awk_mem, duck_s, duck_mem, load))

    print("| lines | MB | Spark: parse + 6 analyses | answers / quarantine listing | lines/s | peak RSS |"
          " mawk single pass (1 core) | peak RSS | Spark / mawk | DuckDB (2 threads) | peak RSS | Spark / DuckDB |"
          " load avg |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lines, mb, cs, ph, cm, aw, am, dk, dm, load in rows:
        print(f"| {lines:,} | {mb:.0f} | {cs:.1f} s | {ph['answers']:.1f} / {ph['quarantine']:.1f} s"
              f" | {lines / cs:,.0f} | {cm / 2**30:.2f} GiB | {aw:.1f} s | {am / 2**20:.0f} MiB | "
              f"{cs / aw:.2f}x | {dk:.1f} s | {dm / 2**30:.2f} GiB | {cs / dk:.2f}x | {load:.1f} |")
    spark.stop()


if __name__ == "__main__":
    main()
