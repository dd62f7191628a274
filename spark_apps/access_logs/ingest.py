"""Read one day of access logs into a cached RDD, with per-file line numbers for bad lines.

Every input line becomes exactly one record of the parsed RDD:

* a request fact tuple ``(ip, url, status, bytes)`` (see ``analyses``) for a line
  that parses, or
* a ``QuarantinedLine`` for a line that does not,

and every input partition ends with one ``PartitionLines`` record holding its line
count. Those counts let the driver turn "line k of partition p of file f" into the
line number within the file *after* the single parsing pass: the same trick as
``zipWithIndex``, without the extra pass over the text that ``zipWithIndex`` runs
to count partitions. Gzip files are not splittable, so they are one partition.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark import RDD, StorageLevel
from pyspark.sql import SparkSession

from spark_apps.access_logs.parser import ParsedLine, parse_line

LOG_SUFFIXES = (".log", ".log.gz")


@dataclass(frozen=True)
class QuarantinedLine:
    file: str
    file_partition: int
    line_in_partition: int  # 1-based within the partition; see module doc
    reason: str
    raw: str


@dataclass(frozen=True)
class PartitionLines:
    file: str
    file_partition: int
    lines: int


def is_request_fact(record) -> bool:
    # Facts are plain tuples; side records are dataclasses (not tuples).
    return type(record) is tuple


def list_log_files(spark: SparkSession, folder_uri: str) -> tuple[list[str], list[str]]:
    """(log files, ignored files) directly in ``folder_uri``; works on file://, s3://, s3a://.

    Names starting with ``_`` or ``.`` (``_SUCCESS``, editor/partial files) are
    skipped silently; other files without a ``.log``/``.log.gz`` suffix are
    returned as ignored so the summary can show them.
    """
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder_uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        raise FileNotFoundError(f"input folder does not exist: {folder_uri}")
    logs, ignored = [], []
    for status in fs.listStatus(path):
        if not status.isFile():
            continue
        name = status.getPath().getName()
        if name.startswith(("_", ".")):
            continue
        (logs if name.endswith(LOG_SUFFIXES) else ignored).append(status.getPath().toString())
    return sorted(logs), sorted(ignored)


def _parse_partition_of(file: str):
    def parse_partition(partition_index, lines):
        count = 0
        for count, line in enumerate(lines, start=1):
            parsed = parse_line(line)
            if type(parsed) is ParsedLine:
                yield (parsed.ip, parsed.url, parsed.status, parsed.bytes)
            else:
                yield QuarantinedLine(file, partition_index, count, parsed.reason, line)
        yield PartitionLines(file, partition_index, count)

    return parse_partition


def parse_files(spark: SparkSession, files: list[str]) -> RDD:
    """The parsed-record RDD of ``files`` (not cached: the caller decides)."""
    sc = spark.sparkContext
    # textFile decodes with Hadoop's Text.toString, which replaces invalid UTF-8
    # with U+FFFD instead of failing, and decompresses *.gz by extension.
    parts = [sc.textFile(f).mapPartitionsWithIndex(_parse_partition_of(f)) for f in files]
    return parts[0] if len(parts) == 1 else sc.union(parts)


def cache_parsed(records: RDD) -> RDD:
    # MEMORY_AND_DISK: if the parsed day does not fit in executor memory, spill it
    # rather than silently re-reading and re-parsing it for each analysis.
    return records.persist(StorageLevel.MEMORY_AND_DISK)


def request_facts(records: RDD) -> RDD:
    return records.filter(is_request_fact)


@dataclass(frozen=True)
class LineAccounting:
    total_lines: int
    quarantined_lines: int
    quarantine: RDD  # JSON lines: {"file", "line", "reason", "raw"}, sorted by file and line
    side_records: RDD  # cached bad lines + partition counts; unpersist when done


def account_lines(records: RDD) -> LineAccounting:
    """Line totals and the quarantine (bad lines with their line number in their file)."""
    side = records.filter(lambda r: not is_request_fact(r)).persist(StorageLevel.MEMORY_AND_DISK)
    partition_lines = side.filter(lambda r: isinstance(r, PartitionLines)).collect()
    first_line_of = {}  # (file, partition) -> lines of that file before the partition
    for file in {p.file for p in partition_lines}:
        before = 0
        for p in sorted((p for p in partition_lines if p.file == file), key=lambda p: p.file_partition):
            first_line_of[(file, p.file_partition)] = before
            before += p.lines
    bad = side.filter(lambda r: isinstance(r, QuarantinedLine))

    def to_json(q: QuarantinedLine):
        line = first_line_of[(q.file, q.file_partition)] + q.line_in_partition
        return (q.file, line), json.dumps(
            {"file": q.file, "line": line, "reason": q.reason, "raw": q.raw}, ensure_ascii=False)

    quarantine = bad.map(to_json).sortByKey(numPartitions=1).values()
    return LineAccounting(
        total_lines=sum(p.lines for p in partition_lines),
        quarantined_lines=bad.count(),
        quarantine=quarantine,
        side_records=side,
    )
