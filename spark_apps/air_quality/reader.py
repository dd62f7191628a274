"""Read CPCB hourly station exports and Kaggle's "Air Quality Data in India" files (CSV) into
typed rows plus quarantine rows.

Kaggle's files (KAGGLE_LAYOUTS) have their header on the first line; it names the layout:
``StationId``/``City`` and ``Datetime`` (hourly) or ``Date`` (daily). ``stations.csv``
(``StationId, StationName, City, ...``) is read whole on the driver as the lookup that names
the StationIds; its lines are metadata, not data.

Real exports are awkward for a plain CSV reader: a block of station metadata sits
above the header (its lines have other field counts), the header differs per file
(subset of columns, units in some exports), missing values are ``None``/``NA``/empty.
So:

1. the driver reads only the first 64 KB of every file (Hadoop FileSystem, so the
   data itself is read only by the executors), finds the header line (the first
   line starting with ``From Date``), maps its cells to canonical names and reads
   station/city from the preamble (``Station,...``/``City,...``), falling back to
   the file name ``<city>__<station>.csv`` or ``<station>.csv``;
2. the files are read line by line (Spark's text source, so a file never has to fit
   in memory), each file alone in one partition (:func:`one_file_per_partition`), so
   a line's number is its index in the partition;
3. every line after the header is split and typed by Spark's own CSV parser
   (``from_csv`` on the line, PERMISSIVE mode, an explicit schema per header layout and
   ``columnNameOfCorruptRecord``), so the line number read in step 2 stays beside it; a line
   the parser flags becomes a quarantine row with a specific reason (which column, what
   value), the file, its line number and the raw text - never dropped.

Lines that are empty or hold only commas (how spreadsheets write empty rows) carry
no value and are skipped, but counted.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import logging
import operator
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable, Iterator, NamedTuple
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_apps.air_quality.schema import (
    DAILY_SCHEMA,
    MEASURE_COLUMNS,
    MISSING_TOKENS,
    PARQUET_SCHEMA,
    canonical_column,
)
from spark_apps.common.session import temporary_conf

log = logging.getLogger(__name__)

HEAD_CHARS = 65536  # the header must appear within the first 64 KB of a file
# The times of CPCB exports (DD-MM-YYYY HH:mm) and Kaggle's hourly files (YYYY-MM-DD HH:mm:ss),
# seconds optional: one pattern, the alternatives as optional sections.
TIMESTAMP_FORMAT = "[dd-MM-yyyy][yyyy-MM-dd] HH:mm[:ss]"
# Dates of the daily files: Kaggle's own, and DD-MM-YYYY as spreadsheet tools re-save them.
DATE_FORMAT = "[yyyy-MM-dd][dd-MM-yyyy]"
CORRUPT = "_corrupt_record"
# Spark's CSV parser for every data line (from_csv): PERMISSIVE keeps a line that does not fit
# the schema (its fields that did parse, the line in CORRUPT) instead of failing the run.
CSV_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
    "timestampNTZFormat": TIMESTAMP_FORMAT,
    "dateFormat": DATE_FORMAT,
    "locale": "en-US",
    "ignoreLeadingWhiteSpace": "true",
    "ignoreTrailingWhiteSpace": "true",
    "escape": '"',  # CSV's own quoting: "" inside a quoted field is a quote
}
# The first parsing round (see parse_raw): the line as it is, "None" (CPCB's token) as the null.
FAST_CSV_OPTIONS = {**CSV_OPTIONS, "nullValue": "None"}
# The cells parse_raw locates in every line (absent ones are null).
CELL_COLUMNS = ["from_ts", "to_ts", *MEASURE_COLUMNS, "source_aqi", "station", "city", "station_id",
                "source_aqi_bucket"]
_HEADER_START = re.compile(r'^\s*"?\s*from\s*date', re.IGNORECASE)
_BLANK_LINE = r"^[\s,]*$"
# A missing-value token as a whole cell (bare or quoted, any case, spaces around it). Spark's
# CSV parser knows one null token (nullValue) and CPCB/spreadsheets write several, so they
# are emptied before it parses the line (an empty cell is null). Group 1 keeps the comma.
_MISSING_TOKEN = "|".join(re.escape(t) for t in MISSING_TOKENS if t)
_MISSING_CELL = rf'(^|,)\s*(?:"\s*(?i:{_MISSING_TOKEN})\s*"|(?i:{_MISSING_TOKEN}))\s*(?=,|$)'
# Split on commas outside double quotes. Only used for lines containing a quote: the
# look-ahead rescans the rest of the line at every comma, too slow for every row.
_QUOTE_AWARE_COMMA = r',(?=(?:[^"]*"[^"]*")*[^"]*$)'
_EMPTY_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):///")


CPCB = "cpcb"
# Kaggle "Air Quality Data in India (2015-2020)": layout -> (station key column, daily).
KAGGLE_LAYOUTS: dict[str, tuple[str, bool]] = {
    "kaggle_station_hour": ("station_id", False),
    "kaggle_city_hour": ("city", False),
    "kaggle_station_day": ("station_id", True),
    "kaggle_city_day": ("city", True),
}
KAGGLE_STATIONS = "kaggle_stations"  # stations.csv: StationId -> StationName, City (not data)


@dataclass
class FilePlan:
    """What the driver learned from the head of one file."""

    path: str
    header_line: int | None = None  # 1-based line number of the header
    columns: list[str | None] = field(default_factory=list)  # canonical name per field
    # Fields of the header line with the empty ones spreadsheet tools pad rows with (>= width).
    header_fields: int = 0
    station: str | None = None
    city: str | None = None
    problem: str | None = None  # set when the file as a whole cannot be read
    size: int = 0  # bytes
    layout: str = CPCB  # CPCB, a key of KAGGLE_LAYOUTS or KAGGLE_STATIONS
    # KAGGLE_STATIONS only: StationId -> (StationName, City)
    stations: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return len(self.columns)

    @property
    def daily(self) -> bool:
        return self.layout in KAGGLE_LAYOUTS and KAGGLE_LAYOUTS[self.layout][1]

    @property
    def station_from_city(self) -> bool:
        """A city file (Kaggle city_hour/city_day): its rows' station is their city."""
        return self.layout in KAGGLE_LAYOUTS and KAGGLE_LAYOUTS[self.layout][0] == "city"

    @property
    def time_label(self) -> str:
        """The header's name of the time column, for reasons."""
        if self.layout in KAGGLE_LAYOUTS:
            return "Date" if self.daily else "Datetime"
        return "From Date"


def _csv_cells(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)), [])


def names_from_file_name(path: str) -> tuple[str, str | None]:
    """``.../Bengaluru__BWSSB.csv`` -> ('BWSSB', 'Bengaluru'); ``.../BWSSB.csv`` -> ('BWSSB', None)."""
    stem = PurePosixPath(unquote(path)).stem
    if "__" in stem:
        city, station = stem.split("__", 1)
        return station, city
    return stem, None


def kaggle_layout(header_cells: list[str]) -> str | None:
    """The Kaggle layout a first line is the header of, or None (see KAGGLE_LAYOUTS)."""
    keys = {re.sub(r"[^a-z0-9]", "", c.lower()) for c in header_cells}
    if "fromdate" in keys:
        return None
    if {"stationid", "stationname"} <= keys and not keys & {"date", "datetime"}:
        return KAGGLE_STATIONS
    by = "station" if "stationid" in keys else "city" if "city" in keys else None
    when = "hour" if "datetime" in keys else "day" if "date" in keys else None
    return f"kaggle_{by}_{when}" if by and when else None


def _plan_stations(plan: FilePlan, lines: list[str], whole: bool) -> FilePlan:
    """stations.csv: the lookup of StationId -> (StationName, City); none of its lines is data."""
    if whole is False:
        plan.problem = f"stations list longer than the {HEAD_CHARS} characters read on the driver"
        return plan
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header = [canonical_column(c) for c in rows[0]]
    at = {name: header.index(name) for name in ("station_id", "station", "city") if name in header}
    for cells in rows[1:]:
        cells = [c.strip() for c in cells]
        if len(cells) > max(at.values()) and cells[at["station_id"]]:
            city = cells[at["city"]] if "city" in at else None
            plan.stations[cells[at["station_id"]]] = (cells[at["station"]] or cells[at["station_id"]], city or None)
    return plan


def plan_file(path: str, head: str, size: int = 0) -> FilePlan:
    """Find the layout, the header and the station/city of one file from its first lines.

    Hand-written because Spark's CSV reader cannot do it: the header is not the first line of a
    CPCB export (a preamble of other widths sits above it), its cells differ per file and must
    be mapped onto canonical names, and the layout (CPCB or one of Kaggle's) follows from them.
    """
    plan = FilePlan(path=path, size=size)
    # A UTF-8 BOM (spreadsheet tools write one) is part of the first line, not of its first cell.
    head = head.removeprefix("\ufeff")
    lines = re.split(r"\r?\n", head)
    plan.layout = kaggle_layout(_csv_cells(lines[0])) or CPCB
    if plan.layout == KAGGLE_STATIONS:
        plan.header_line = 1
        # read_heads reads more bytes than HEAD_CHARS characters need: a shorter head is the whole file.
        return _plan_stations(plan, lines, whole=len(head) < HEAD_CHARS - 1)
    if plan.layout in KAGGLE_LAYOUTS:
        return _plan_kaggle(plan, lines[0])
    meta: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if _HEADER_START.match(line):
            cells = _csv_cells(line)
            plan.header_fields = len(cells)
            while cells and not cells[-1].strip():  # spreadsheet padding
                cells.pop()
            plan.header_line = number
            plan.columns = [canonical_column(c) for c in cells]
            break
        cells = _csv_cells(line)
        if len(cells) >= 2 and cells[0].strip() and cells[1].strip():
            meta.setdefault(cells[0].strip().lower(), cells[1].strip())
    if plan.header_line is None:
        plan.problem = f"no header line starting with 'From Date' in the first {HEAD_CHARS} characters"
        return plan
    if "from_ts" not in plan.columns:
        plan.problem = "header has no 'From Date' column"
        return plan
    duplicated = sorted({c for c in plan.columns if c and plan.columns.count(c) > 1})
    if duplicated:
        plan.problem = f"header maps several columns to {duplicated}"
        return plan
    ignored = [c for c, name in zip(_csv_cells(lines[plan.header_line - 1]), plan.columns) if c.strip() and not name]
    if ignored:
        log.info("%s: ignoring columns we do not model: %s", path, ignored)
    file_station, file_city = names_from_file_name(path)
    plan.station = meta.get("station") or file_station
    plan.city = meta.get("city") or file_city
    return plan


def _plan_kaggle(plan: FilePlan, header: str) -> FilePlan:
    """A Kaggle file: the header is its first line; station and city come from its rows (and
    stations.csv), never from the file name (``station_hour.csv`` names no station)."""
    cells = _csv_cells(header)
    plan.header_fields = len(cells)
    while cells and not cells[-1].strip():
        cells.pop()
    plan.header_line = 1
    plan.columns = [canonical_column(c) for c in cells]
    duplicated = sorted({c for c in plan.columns if c and plan.columns.count(c) > 1})
    if duplicated:
        plan.problem = f"header maps several columns to {duplicated}"
    ignored = [c for c, name in zip(cells, plan.columns) if c.strip() and not name]
    if ignored:
        log.info("%s: ignoring columns we do not model: %s", plan.path, ignored)
    return plan


class Layout(NamedTuple):
    """What Spark's CSV parser needs to read a file's data lines: the canonical column of each
    header field (None: a column we do not model) and the header's field count with padding.
    Files with equal layouts share one parser schema (:func:`layout_schema`)."""

    columns: tuple[str | None, ...]
    fields: int
    daily: bool


def file_layout(plan: FilePlan) -> Layout | None:
    """The layout of a file's data lines; None for a file without any (quarantined whole, or stations.csv)."""
    if plan.problem or plan.layout == KAGGLE_STATIONS:
        return None
    return Layout(tuple(plan.columns), max(plan.header_fields, plan.width), plan.daily)


_STRING_CELLS = {"station", "city", "station_id", "source_aqi_bucket"}


def _cell_type(name: str, daily: bool) -> T.DataType:
    if name == "from_ts":
        return T.DateType() if daily else T.TimestampNTZType()
    if name == "to_ts":
        return T.TimestampNTZType()
    return T.StringType() if name in _STRING_CELLS else T.DoubleType()


def layout_schema(layout: Layout, typed: bool = True) -> T.StructType:
    """The explicit schema Spark's CSV parser reads a layout's lines with.

    ``typed``: every modelled cell in its type (times as wall-clock TIMESTAMP_NTZ, dates of
    daily files as DATE, measures as DOUBLE) plus the CORRUPT column; otherwise every cell as
    text, for the reasons of the lines the typed parse flags. Columns we do not model and the
    header's padding fields are read as text and dropped.
    """
    fields = []
    for i in range(layout.fields):
        name = layout.columns[i] if i < len(layout.columns) else None
        if name in CELL_COLUMNS:
            fields.append(T.StructField(name, _cell_type(name, layout.daily) if typed else T.StringType()))
        else:
            fields.append(T.StructField(f"_unused_{i}", T.StringType()))
    if typed:
        fields.append(T.StructField(CORRUPT, T.StringType()))
    return T.StructType(fields)


def _plan_frame(spark: SparkSession, plans: list[FilePlan], layouts: dict[Layout, int]) -> DataFrame:
    """One row per spelling of each file's path (file_key_spellings): what its lines need from the
    plan, ``layout`` the index of its Layout (-1: none)."""
    rows = []
    for p in plans:
        layout = file_layout(p)
        rows.extend((spelling, p.path, p.header_line or 0, p.width, p.station, p.city, p.problem, p.layout == KAGGLE_STATIONS,
                     p.daily, p.station_from_city, p.time_label, -1 if layout is None else layouts[layout])
                    for spelling in file_key_spellings(p.path))
    schema = T.StructType(
        [
            T.StructField("file_path", T.StringType()),  # as _metadata.file_path may spell it
            T.StructField("source_file", T.StringType()),
            T.StructField("header_line", T.IntegerType()),
            T.StructField("width", T.IntegerType()),
            T.StructField("file_station", T.StringType()),
            T.StructField("file_city", T.StringType()),
            T.StructField("problem", T.StringType()),
            T.StructField("lookup", T.BooleanType()),
            T.StructField("daily", T.BooleanType()),
            T.StructField("station_from_city", T.BooleanType()),
            T.StructField("time_label", T.StringType()),
            T.StructField("layout", T.IntegerType()),
        ]
    )
    return spark.createDataFrame(rows, schema)


def _quoted(raw: Column) -> Column:
    return F.concat(F.lit("'"), F.substring(raw, 1, 40), F.lit("'"))


def _csv_files(spark: SparkSession, raw_uri: str) -> DataFrame:
    """Every line of every ``.csv`` under ``raw_uri`` (Spark's text source); only listed until an action."""
    return spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.[cC][sS][vV]").text(raw_uri)


def file_key(path: str) -> str:
    """One spelling per file: ``file:///x`` and ``file:/x`` (both name the same file) -> ``file:/x``.

    The driver's file list (``inputFiles``) and the ``_metadata.file_path`` of the rows
    differ only in this, so both are joined on ``file_key``.
    """
    return _EMPTY_AUTHORITY.sub(r"\1:/", path, count=1)


def file_key_spellings(key: str) -> list[str]:
    """The spellings of a file's ``file_key`` a row's ``_metadata.file_path`` may have (``file:/x``
    and ``file:///x``), listed on the driver so that the rows join on plain equality: rewriting
    every row's path with a regexp cost a third of the read (3 s per million lines here)."""
    scheme, sep, rest = key.partition(":/")
    if sep and scheme and not rest.startswith("/"):
        return [key, f"{scheme}:///{rest}"]
    return [key]


class FileHead(NamedTuple):
    key: str  # file_key of the file
    head: str  # its first HEAD_CHARS characters
    size: int  # its length in bytes


def read_heads(spark: SparkSession, raw_uri: str) -> list[FileHead]:
    """Key, first HEAD_CHARS characters and size of every CSV file under ``raw_uri``.

    Reads only the head of each file, on the driver through Hadoop's FileSystem (the
    same one Spark reads with: local, s3a, ...), from the list of files Spark itself
    would read. The files are then read once, line by line, by the executors.
    """
    jvm = spark.sparkContext._jvm
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    heads = []
    for uri in _csv_files(spark, raw_uri).inputFiles():
        # inputFiles() gives %-escaped URIs, hence Path(URI) and not lake.fs_and_path.
        path = jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(uri))
        fs = path.getFileSystem(hadoop_conf)
        stream = fs.open(path)
        try:
            # Up to 4 bytes per character in UTF-8; a character cut at the end lies beyond HEAD_CHARS.
            data = bytes(stream.readNBytes(4 * HEAD_CHARS))
        finally:
            stream.close()
        size = fs.getFileStatus(path).getLen()
        heads.append(FileHead(file_key(uri), data.decode("utf-8", errors="replace")[:HEAD_CHARS], size))
    return heads


def plan_files(spark: SparkSession, raw_uri: str) -> list[FilePlan]:
    plans = [plan_file(key, head, size) for key, head, size in read_heads(spark, raw_uri)]
    for p in plans:
        if p.problem:
            log.warning("%s: %s; all its lines go to quarantine", p.path, p.problem)
    return sorted(plans, key=lambda p: p.path)


@contextlib.contextmanager
def one_file_per_partition(spark: SparkSession, plans: list[FilePlan]) -> Iterator[None]:
    """While inside, file scans put every file, whole, alone into one partition.

    Needed for line numbers (see :func:`read_lines`); it also makes one task one
    station. Spark splits a file longer than ``maxSplitBytes = min(maxPartitionBytes,
    max(openCostInBytes, bytes per core))`` and packs files into a partition while
    their lengths plus ``openCostInBytes`` each stay within it; with both settings at
    the largest file's length, no file is split and no two non-empty files share a
    partition. The scans plan their partitions when they run, so every action on the
    lines must happen inside. If Spark ever did otherwise, :func:`check_line_numbers`
    notices and fails: lines are never numbered wrongly.
    """
    largest = str(max([p.size for p in plans] + [1 << 20]))
    with temporary_conf(spark, {"spark.sql.files.maxPartitionBytes": largest, "spark.sql.files.openCostInBytes": largest}):
        yield



# monotonically_increasing_id() = partition index << 33 | row index within the partition.
_ROW_INDEX_MASK = (1 << 33) - 1


def read_lines(spark: SparkSession, raw_uri: str) -> DataFrame:
    """(source_file, line_number, line) for every line of every CSV under ``raw_uri``.

    Read inside :func:`one_file_per_partition`: a partition is then one file, read
    from its start, and a line's number is its row index within the partition, plus one.
    """
    return _csv_files(spark, raw_uri).select(
        F.col("_metadata.file_path").alias("source_file"),
        ((F.monotonically_increasing_id().bitwiseAND(F.lit(_ROW_INDEX_MASK))) + 1).alias("line_number"),
        F.col("value").alias("line"),
    )


class FileSplitError(RuntimeError):
    """A file's lines were not read as one partition of their own, so their numbers are wrong."""


def check_line_numbers(lines_per_file: dict[str, tuple[int, int]]) -> None:
    """Fail unless every file's line numbers run 1..n: ``{file: (lines read, largest line number)}``.

    A file split over two partitions restarts its numbering (largest < lines); two files
    in one partition continue it (largest > lines). Either way the header filter and the
    quarantine's line numbers would be wrong, so nothing may be written.
    """
    wrong = sorted(f for f, (lines, largest) in lines_per_file.items() if lines != largest)
    if wrong:
        raise FileSplitError(
            f"{len(wrong)} file(s) were not read one partition per file ({', '.join(wrong[:5])}); "
            "read them inside reader.one_file_per_partition"
        )


@dataclass
class ParsedRaw:
    """``rows``: every line, typed after its file's header, with ``preamble`` (the header
    and the lines above it), ``blank``, ``reason`` (null when good) and ``reason_kind`` (the
    reason without the offending values, e.g. ``non-numeric pm25``)."""

    rows: DataFrame
    plans: list[FilePlan]


def _unquote(field: Column) -> Column:
    return F.regexp_replace(F.regexp_replace(F.trim(field), r'^"(.*)"$', "$1"), '""', '"')


def parse_raw(spark: SparkSession, raw_uri: str, plans: list[FilePlan]) -> ParsedRaw:
    """Typed rows and quarantine reasons for all CSV files under ``raw_uri``.

    ``plans`` come from :func:`plan_files`; run every action on the rows inside
    :func:`one_file_per_partition` and check their line numbers with
    :func:`check_line_numbers` before using them (convert.py does both). Persist the rows
    before filtering them: a filter such as :func:`is_good` is pushed down through these
    projections and copies ``from_csv`` into its predicate thousands of times (4,710 at 1 M
    lines, out of heap).

    Every data line is split and typed by Spark's CSV parser (``from_csv`` with CSV_OPTIONS)
    with the explicit schema of its file's layout. ``from_csv`` on the numbered lines rather
    than ``spark.read.csv``: the CSV source can neither number lines nor skip a preamble of
    other widths, and it takes one header mapping, not one per file. Missing-value tokens are
    emptied (_MISSING_CELL) and the line parsed again where a first round without that flags it.
    The lines the parser still flags (CORRUPT: a field that does not parse, another field count),
    and those with a non-finite number or without a time, are parsed once more as text - only
    they - to say which column holds what value; their field count comes from a comma split
    (hand-written: Spark's parser reports a count that differs from the schema's only as
    "malformed", and spreadsheet padding is no error).
    """
    if not plans:
        raise FileNotFoundError(f"no .csv files under {raw_uri}")
    layouts = {layout: i for i, layout in enumerate(sorted({file_layout(p) for p in plans} - {None}))}
    plan_frame = _plan_frame(spark, plans, layouts).withColumnRenamed("source_file", "file_key")
    lines = read_lines(spark, raw_uri)
    lines = lines.join(
        F.broadcast(plan_frame), lines["source_file"] == plan_frame["file_path"], "left"
    ).drop("file_path").withColumn(
        # Safety net: a file Spark reads but the driver did not plan (landed between the
        # two listings) is quarantined whole, never dropped.
        "problem",
        F.when(F.col("file_key").isNull(), F.lit("file was not planned (it appeared during the run); rerun"))
        .otherwise(F.col("problem")),
    )
    # Preamble and header lines are the file's metadata, not data; they are kept (and
    # skipped later) only so the conversion can check the line numbers per file. Files
    # without a usable header keep all lines as data so that they are quarantined whole.
    # A stations list (Kaggle's stations.csv) is metadata as a whole.
    preamble = F.col("problem").isNull() & ((F.col("line_number") <= F.col("header_line")) | F.col("lookup"))
    lines = lines.select("*", preamble.alias("preamble"), F.col("line").rlike(_BLANK_LINE).alias("blank"))
    data = F.col("problem").isNull() & ~F.col("preamble") & ~F.col("blank")
    lines = lines.select("*", data.alias("data"))

    def per_layout(value: Callable[[int, Layout], Column | None]) -> Column:
        """``value`` for the line's layout (null where it gives None)."""
        expr = None
        for layout, i in layouts.items():
            v = value(i, layout)
            if v is not None:
                expr = F.when(F.col("layout") == i, v) if expr is None else expr.when(F.col("layout") == i, v)
        return F.lit(None) if expr is None else expr

    def parse(prefix: str, typed: bool, where: Column, text: str = "cleaned",
              options: dict[str, str] = CSV_OPTIONS) -> list[Column]:
        """One parser per layout, run only on the lines of its files where ``where`` holds (else null).
        Selected on their own, so that each runs once per line, not once per column taken from it."""
        return [
            F.when(where & (F.col("layout") == i),
                   F.from_csv(F.col(text), layout_schema(layout, typed).simpleString(), options))
            .alias(f"{prefix}{i}")
            for layout, i in layouts.items()
        ]

    def cell(prefix: str, name: str) -> Column:
        return per_layout(lambda i, layout: F.col(f"{prefix}{i}")[name] if name in layout.columns else None)

    numbers = [*MEASURE_COLUMNS, "source_aqi"]
    kind = {n: T.DoubleType() for n in numbers} | {n: T.StringType() for n in _STRING_CELLS}

    def values(prefix: str) -> list[Column]:
        return [cell(prefix, n).cast(kind.get(n, T.TimestampNTZType())) for n in CELL_COLUMNS]

    def is_corrupt(prefix: str) -> Column:
        return F.coalesce(per_layout(lambda i, _: F.col(f"{prefix}{i}")[CORRUPT].isNotNull()), F.lit(False))

    def needs_a_look(v: str) -> Column:
        """A data line to look at closer: the parser flagged it, a number is not finite or there is no time."""
        non_finite = functools.reduce(
            operator.or_, [F.col(f"{v}{n}").isNotNull() & ~(F.abs(F.col(f"{v}{n}")) < F.lit(float("inf")))
                           for n in numbers])  # NaN is above infinity
        return F.col("data") & (F.col(f"{v}corrupt") | F.col(f"{v}from_ts").isNull() | non_finite)

    # Parsed in two rounds, so that the regexp emptying missing-value tokens (_MISSING_CELL, a
    # fifth of the parse's time when run on every line) runs only on the lines that need it: first
    # the line as it is, with the export's usual "None" as the parser's null; then, for the lines
    # this round flags only, the line with every token emptied, parsed again. A line the first round
    # accepts holds no other token in a number or time (it would not have parsed); in text cells
    # :func:`given` treats them.
    lines = lines.select("*", *parse("fast_", True, F.col("data"), "line", FAST_CSV_OPTIONS))
    lines = lines.select("*", *[c.alias(f"fast_{n}") for c, n in zip(values("fast_"), CELL_COLUMNS)],
                         is_corrupt("fast_").alias("fast_corrupt"))
    lines = lines.withColumn("second_round", needs_a_look("fast_"))
    lines = lines.withColumn(
        "cleaned", F.when(F.col("second_round"), F.regexp_replace("line", _MISSING_CELL, "$1")))
    lines = lines.select("*", *parse("typed_", True, F.col("second_round")))
    second = F.col("second_round")
    lines = lines.select(
        "*",
        *[F.when(second, c).otherwise(F.col(f"fast_{n}")).alias(f"v_{n}") for c, n in zip(values("typed_"), CELL_COLUMNS)],
        (second & is_corrupt("typed_")).alias("v_corrupt"),
    )
    finite = {n: F.abs(F.col(f"v_{n}")) < F.lit(float("inf")) for n in numbers}  # NaN is above infinity
    lines = lines.withColumn("flagged", needs_a_look("v_"))

    # The flagged lines only: their cells as text, as the same parser splits them ...
    quoted = F.instr("line", '"') > 0
    lines = lines.select(
        "*",
        *parse("text_", False, F.col("flagged")),
        F.when(F.col("flagged"), quoted).alias("quoted"),
        F.when(F.col("flagged"), F.when(quoted, F.transform(F.split("line", _QUOTE_AWARE_COMMA, -1), _unquote))
               .otherwise(F.split("line", ",", -1))).alias("fields"),
    )
    # ... and their field count. Spreadsheet-saved CSVs pad rows with empty fields up to the
    # widest row; those are harmless. Fewer fields, or values beyond the header, mean the row
    # is broken.
    field_count = F.size("fields")
    extra_non_empty = F.exists(
        F.slice("fields", F.col("width") + 1, 1 << 20),
        lambda f: F.when(F.col("quoted"), f).otherwise(F.trim(f)) != "",
    )
    width_problem = F.when(
        F.col("flagged") & ((field_count < F.col("width")) | ((field_count > F.col("width")) & extra_non_empty)),
        F.format_string("wrong number of fields: expected %d, got %d", F.col("width"), field_count),
    )
    lines = lines.select("*", *[cell("text_", n).alias(f"cell_{n}") for n in CELL_COLUMNS],
                         width_problem.alias("width_problem"))

    def raw(name: str) -> Column:
        return F.col(f"cell_{name}")

    typed: dict[str, Column] = {}
    # Each problem twice: with the offending value for the quarantine row, and as its kind
    # (without the value) for the per-reason counts of data_quality_runs, which must stay
    # few whatever the values are. Cells (raw) exist only on flagged lines: elsewhere every
    # present value parsed.
    problems: list[Column] = [F.col("width_problem")]
    kinds: list[Column] = [F.when(F.col("width_problem").isNotNull(), F.lit("wrong number of fields"))]
    for name in ("from_ts", "to_ts"):
        value = F.col(f"v_{name}")
        typed[name] = value
        # From Date (Kaggle: Datetime or Date) is required; To Date may be absent from a
        # file, but a value that is present has to parse.
        label = F.col("time_label") if name == "from_ts" else F.lit("To Date")
        unparseable = F.col("data") & value.isNull() & (F.lit(name == "from_ts") | raw(name).isNotNull())
        problems.append(
            F.when(
                unparseable,
                F.concat(F.lit("unparseable "), label, F.lit(": "), F.coalesce(_quoted(raw(name)), F.lit("<missing>"))),
            )
        )
        kinds.append(F.when(unparseable, F.concat(F.lit("unparseable "), label)))
    for name in numbers:
        typed[name] = F.when(finite[name], F.col(f"v_{name}"))
        # A missing-value token was emptied before parsing, so a cell that is there is a value.
        non_numeric = raw(name).isNotNull() & ~F.coalesce(finite[name], F.lit(False))
        problems.append(F.when(non_numeric, F.concat(F.lit(f"non-numeric {name}: "), _quoted(raw(name)))))
        kinds.append(F.when(non_numeric, F.lit(f"non-numeric {name}")))

    def given(name: str) -> Column:
        value = F.col(f"v_{name}")  # trimmed by the parser, null when empty or "None"
        # "" quoted is an empty string, not null; other missing-value tokens are null too (the
        # first parsing round leaves them in text cells).
        return F.when((value != "") & ~F.lower(F.trim(value)).isin(*MISSING_TOKENS), value)

    # Kaggle's station files name a station by its StationId; stations.csv (when landed)
    # gives its name and city. A city file's rows are the city's: their station is the city.
    stations = {sid: named for p in plans if p.layout == KAGGLE_STATIONS for sid, named in p.stations.items()}
    station_name = station_city = F.lit(None).cast("string")
    if stations:
        ids = sorted(stations)
        station_name = F.element_at(F.create_map(*[F.lit(x) for i in ids for x in (i, stations[i][0])]),
                                    given("station_id"))
        station_city = F.element_at(F.create_map(*[F.lit(x) for i in ids for x in (i, stations[i][1])]),
                                    given("station_id"))
    typed["city"] = F.coalesce(given("city"), station_city, F.col("file_city"))
    typed["station"] = F.coalesce(
        given("station"), station_name, given("station_id"),
        F.when(F.col("station_from_city"), given("city")), F.col("file_station"),
    )
    no_station = typed["station"].isNull()
    problems.append(F.when(no_station, F.lit("no station: StationId or City missing")))
    kinds.append(F.when(no_station, F.lit("no station")))
    typed["source_aqi_bucket"] = given("source_aqi_bucket")

    # A file that cannot be read has that as the only reason of its lines (its "header" of
    # width 0 would make every line's field count wrong too). Null problems are skipped.
    reason = F.coalesce(F.col("problem"), F.concat_ws("; ", *problems))
    reason_kind = F.coalesce(F.col("problem"), F.concat_ws("; ", *kinds))
    # Blank lines of a readable file are kept with a flag so they are counted, not lost.
    is_blank = F.col("blank") & F.col("problem").isNull() & ~F.col("preamble")
    out = lines.select(
        "source_file",
        "line_number",
        "line",
        *[typed[n].alias(n) for n in typed],
        "daily",
        "preamble",
        is_blank.alias("blank"),
        F.when(~F.col("preamble") & ~is_blank & (reason != ""), reason).alias("reason"),
        F.when(~F.col("preamble") & ~is_blank & (reason != ""), reason_kind).alias("reason_kind"),
    )
    return ParsedRaw(rows=out, plans=plans)


def is_good() -> Column:
    """True for a row of :func:`parse_raw` that is data and has no reason to be quarantined."""
    return F.col("reason").isNull() & ~F.col("blank") & ~F.col("preamble")


def good_rows(parsed: DataFrame) -> DataFrame:
    """Hourly rows without a reason, in the Parquet schema (see schema.PARQUET_SCHEMA)."""
    good = parsed.where(is_good() & ~F.col("daily")).withColumn("month", F.date_format("from_ts", "yyyy-MM"))
    return good.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in PARQUET_SCHEMA.fields])


def good_daily_rows(parsed: DataFrame) -> DataFrame:
    """Rows of the daily files without a reason, in schema.DAILY_SCHEMA."""
    good = parsed.where(is_good() & F.col("daily")).withColumn("day", F.to_date("from_ts"))
    return good.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in DAILY_SCHEMA.fields])


def bad_rows(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reason").isNotNull()).select("source_file", "line_number", "line", "reason")
