"""Read one day of access logs into column batches, counted in the same pass, with per-file line numbers.

Every input partition (a slice of one file; gzip files are not splittable, so they
are one partition) becomes ``RequestBatch`` records (see ``batches``), and every
input line lands in exactly one batch: as a parsed request, or as a quarantined
line with its reason and its line number *within the partition*. The batches also
carry their line counts, which let the driver turn "line k of partition p of file
f" into the line number within the file *after* the single parsing pass: the same
trick as ``zipWithIndex``, without the extra pass over the text that
``zipWithIndex`` runs to count partitions.

The job reads the batches once (``count_and_account``): each partition's batches are
counted for the six analyses and reduced to their line records on the spot, so the
parsed requests are never cached or read twice.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
from pyspark import RDD, StorageLevel
from pyspark.sql import SparkSession

from spark_apps.access_logs import analyses, reader
from spark_apps.access_logs.batches import parse_buffer, parse_partition
from spark_apps.common import lake

LOG_SUFFIXES = (".log", ".log.gz")
PARTITIONS_PER_CORE = 1  # of the parsed RDD; see parse_files


def list_log_files(spark: SparkSession, folder_uri: str) -> tuple[list[str], list[str]]:
    """(log files, ignored files) directly in ``folder_uri``; works on file://, s3://, s3a://.

    Names starting with ``_`` or ``.`` (``_SUCCESS``, editor/partial files) are
    skipped silently; other files without a ``.log``/``.log.gz`` suffix are
    returned as ignored so the summary can show them.
    """
    fs, path = lake.fs_and_path(spark, folder_uri)
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
    def parse(partition_index, lines):
        return parse_partition(file, partition_index, lines)

    return parse


def _parse_splits(group, s3: dict, chunk: int):
    """The batches of a group of splits: one per block read, at least one per split."""
    reader.keep_freed_memory()
    for split in group:
        first_line = 1
        for data, starts, ends, replaced in reader.read_split(split, s3, chunk):
            yield parse_buffer(split.file, split.index, first_line, data, starts, ends, replaced)
            first_line += len(starts)
        if first_line == 1:  # an empty split still reports itself (see account_lines)
            yield parse_buffer(split.file, split.index, 1, b"", np.zeros(0, np.int64), np.zeros(0, np.int64))


def _file_sizes(spark: SparkSession, files: list[str]) -> list[tuple[str, int]]:
    sizes = []
    for uri in files:
        fs, path = lake.fs_and_path(spark, uri)
        sizes.append((uri, int(fs.getFileStatus(path).getLen())))
    return sizes


def parse_files(spark: SparkSession, files: list[str]) -> RDD:
    """The ``RequestBatch`` RDD of ``files`` (not cached: the caller decides)."""
    sc = spark.sparkContext
    # One partition per core, of similar size (splits are dealt by bytes): both cores stay busy to
    # the end, and each partition emits one count per key it saw, so the fewer partitions the fewer
    # records the shuffle moves (clients recur across partitions). At 10 M lines two partitions
    # answered in 10.0 s, four in 11.7 s.
    target = max(1, sc.defaultParallelism * PARTITIONS_PER_CORE)
    if files and all(reader.reads_itself(f) for f in files):
        # The tasks read their own bytes (see reader): an RDD of split groups, not of lines.
        splits = reader.plan_splits(_file_sizes(spark, files), target)
        s3 = reader.s3_options(sc._jsc.hadoopConfiguration()) if any(
            not f.startswith("file:") for f in files) else {}
        groups = reader.deal(splits, target)
        chunk = reader.CHUNK_BYTES
        return sc.parallelize(groups, len(groups)).flatMap(lambda group: _parse_splits(group, s3, chunk))
    # Any other file system: Spark's own line reader. textFile decodes with Hadoop's
    # Text.toString, which replaces invalid UTF-8 with U+FFFD instead of failing, and
    # decompresses *.gz by extension.
    parts = [sc.textFile(f).mapPartitionsWithIndex(_parse_partition_of(f)) for f in files]
    batches = parts[0] if len(parts) == 1 else sc.union(parts)
    # Input splits are 32-128 MB, so a big day has dozens of them: a narrow coalesce (no
    # shuffle) keeps the parse running on every core while the passes see a few partitions per core.
    return batches.coalesce(target) if batches.getNumPartitions() > target else batches


@dataclass(frozen=True)
class BatchLines:
    """What ``account_lines`` needs of a ``RequestBatch``: its place, line count and bad lines."""

    file: str
    file_partition: int
    lines: int
    quarantined: list  # [(line_in_partition, reason, raw)]


def _count_and_account_partition(batches):
    line_records = []

    def recorded(batches):
        for batch in batches:
            line_records.append(BatchLines(batch.file, batch.file_partition, batch.lines, batch.quarantined))
            yield batch

    yield from analyses.count_partition(recorded(batches))
    yield from line_records


@dataclass(frozen=True)
class CountedDay:
    counts: RDD  # ((kind, key), requests) for the six analyses (analyses.count_requests), cached
    lines: RDD  # BatchLines, one per batch, for account_lines
    _partials: RDD

    def unpersist(self) -> None:
        self.counts.unpersist()
        self._partials.unpersist()


def count_and_account(batches: RDD) -> CountedDay:
    """One pass over the ``RequestBatch`` RDD: the six analyses' key counts and the line records.

    Each partition emits its key counts (``analyses.count_partition``) and one ``BatchLines``
    per batch; that (small) output is cached, because both the counts' shuffle and the line
    accounting read it and the parse must run only once. MEMORY_AND_DISK: a day with very many
    bad lines spills rather than being parsed again.
    """
    partials = batches.mapPartitions(_count_and_account_partition).persist(StorageLevel.MEMORY_AND_DISK)
    counts = analyses.merge_counts(partials.filter(lambda record: type(record) is tuple))
    return CountedDay(counts.persist(StorageLevel.MEMORY_AND_DISK),
                      partials.filter(lambda record: type(record) is BatchLines), partials)


def _summarise_partition(records, top_n: int):
    # A partition of the union in summarise_day holds either merged counts or BatchLines.
    records = iter(records)
    first = next(records, None)
    if first is None:
        return
    records = itertools.chain([first], records)
    if type(first) is BatchLines:
        yield "lines", [line_counts(batch) for batch in records]
    else:
        yield "totals", analyses.summarise_counts(records, top_n)


def summarise_day(day: CountedDay, top_n: int) -> tuple[dict, LineAccounting]:
    """The six analyses' summary (``analyses.totals``) and the line accounting, in one Spark job.

    On two cores a PySpark job costs ~0.3 s however little it reads, so the summary of the
    counts and the collection of the per-batch line counts share one job (over the union of
    both RDDs); it is also the job that parses the day (the counts' shuffle runs inside it).
    """
    out = day.counts.union(day.lines).mapPartitions(lambda records: _summarise_partition(records, top_n)).collect()
    totals = analyses.merge_totals([value for what, value in out if what == "totals"], top_n)
    lines = account_lines(day.lines, [counts for what, value in out if what == "lines" for counts in value])
    return totals, lines


@dataclass(frozen=True)
class LineAccounting:
    total_lines: int
    quarantined_lines: int
    reasons: dict  # {reason: quarantined lines}
    quarantine: RDD  # JSON lines: {"file", "line", "reason", "raw"}, sorted by file and line


def line_counts(batch) -> tuple:
    """``(file, file_partition, lines, quarantined lines, Counter of reasons)`` of a batch."""
    return (batch.file, batch.file_partition, batch.lines, len(batch.quarantined),
            Counter(reason for _line, reason, _raw in batch.quarantined))


def account_lines(batches: RDD, counts: list | None = None) -> LineAccounting:
    """Line totals and the quarantine (bad lines with their line number in their file).

    ``batches``: ``RequestBatch`` or ``BatchLines`` records (only file, file_partition, lines
    and quarantined are read). ``counts``: their ``line_counts``, when already collected
    (``summarise_day`` does, in the job that answers the analyses); else one job collects them.
    """
    # One small record per batch; the driver holds (number of batches) of them.
    counts = batches.map(line_counts).collect() if counts is None else counts
    lines_in = {}  # (file, partition) -> lines
    reasons: Counter = Counter()
    for file, partition, lines, _bad, batch_reasons in counts:
        lines_in[(file, partition)] = lines_in.get((file, partition), 0) + lines
        reasons.update(batch_reasons)
    first_line_of = {}  # (file, partition) -> lines of that file before the partition
    before: dict = {}
    for file, partition in sorted(lines_in):
        first_line_of[(file, partition)] = before.get(file, 0)
        before[file] = before.get(file, 0) + lines_in[(file, partition)]

    def to_json(batch):
        offset = first_line_of[(batch.file, batch.file_partition)]
        for line_in_partition, reason, raw in batch.quarantined:
            line = offset + line_in_partition
            yield (batch.file, line), json.dumps(
                {"file": batch.file, "line": line, "reason": reason, "raw": raw}, ensure_ascii=False)

    return LineAccounting(
        total_lines=sum(lines_in.values()),
        quarantined_lines=sum(bad for _file, _partition, _lines, bad, _reasons in counts),
        reasons=dict(reasons),
        quarantine=batches.flatMap(to_json).sortByKey(numPartitions=1).values(),
    )
