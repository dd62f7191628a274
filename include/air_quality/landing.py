"""Land CPCB station exports into the lake's raw zone as CSV.

CPCB's portal hands out .xlsx as well as .csv. Spark reads only the CSV layout
(spark_apps/air_quality/reader.py), so spreadsheets are converted here, on the
Airflow worker, cell by cell with openpyxl: the preamble stays (it names the
station and city), values are written as the export shows them, and nothing is
re-typed - typing and quarantining happen once, in Spark.

The raw zone is a lake URI: ``file://`` (a local folder) or an object store
(``s3a://`` on the embedded moto, ``s3://`` on AWS), where the converted files are
uploaded through the Airflow connection (:func:`land_into_lake`).
"""
from __future__ import annotations

import csv
import datetime as dt
import logging
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)

RAW_SUFFIXES = {".csv", ".xlsx"}


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        # A date cell that Excel typed for us: write it the way CPCB writes dates.
        return value.strftime("%d-%m-%Y %H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def xlsx_to_csv(xlsx_path: str | Path, csv_path: str | Path, sheet: str | None = None) -> int:
    """Write the first (or named) sheet of a CPCB .xlsx export as CPCB-layout CSV.

    Rows are trimmed of trailing empty cells, except that rows below the header keep
    at least the header's width, so a row whose last values are missing still has
    the header's number of fields. Returns the number of lines written.
    """
    from openpyxl import load_workbook

    workbook = load_workbook(xlsx_path, read_only=True, data_only=True)
    try:
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = csv_path.with_name(csv_path.name + ".tmp")
        header_width = 0
        written = 0
        with tmp.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            for row in worksheet.iter_rows(values_only=True):
                cells = [_cell_text(v) for v in row]
                last = max((i for i, c in enumerate(cells) if c.strip()), default=-1)
                keep = max(last + 1, header_width)
                if not header_width and cells and cells[0].strip().lower().startswith("from date"):
                    header_width = last + 1
                    keep = header_width
                writer.writerow(cells[:keep] + [""] * (keep - len(cells)))
                written += 1
        tmp.replace(csv_path)  # readers never see a half-written file
        return written
    finally:
        workbook.close()


def land_files(source_dir: str | Path, raw_zone_dir: str | Path) -> list[Path]:
    """Copy .csv and convert .xlsx exports from ``source_dir`` into ``raw_zone_dir``.

    Idempotent: rerunning overwrites the landed copies with the same content. Other
    files are skipped with a log line. Returns the landed paths, sorted.
    """
    source_dir, raw_zone_dir = Path(source_dir), Path(raw_zone_dir)
    raw_zone_dir.mkdir(parents=True, exist_ok=True)
    landed: dict[str, Path] = {}
    for src in sorted(p for p in source_dir.rglob("*") if p.is_file()):
        suffix = src.suffix.lower()
        if suffix not in RAW_SUFFIXES:
            log.info("not an air-quality export, skipped: %s", src)
            continue
        relative = src.relative_to(source_dir)
        if suffix == ".xlsx":
            # Same stem as the export, so the station stays derivable from the file
            # name; a .csv with the same stem (sorted first) keeps the plain name.
            target = raw_zone_dir / relative.with_suffix(".csv")
            if target.as_posix() in landed:
                target = raw_zone_dir / relative.with_name(f"{src.stem}.xlsx.csv")
            lines = xlsx_to_csv(src, target)
            log.info("converted %s -> %s (%d lines)", src, target, lines)
        else:
            target = raw_zone_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(target)
            log.info("copied %s -> %s", src, target)
        landed[target.as_posix()] = target
    return sorted(landed.values())


def land_into_lake(source_dir: str | Path, raw_uri: str, aws_conn_id: str = "aws_default") -> list[str]:
    """:func:`land_files` into the raw zone at ``raw_uri``; returns the landed URIs, sorted.

    ``file://`` lands in place. ``s3://`` / ``s3a://`` (the same objects: s3a is Hadoop's
    name for them) converts into a temporary folder first, then uploads the landed tree
    under ``raw_uri`` with the S3Hook of ``aws_conn_id`` (moto in the embedded stack).
    """
    scheme = urlparse(raw_uri).scheme
    if scheme == "file":
        return [p.as_uri() for p in land_files(source_dir, Path(unquote(urlparse(raw_uri).path)))]
    if scheme not in ("s3", "s3a"):
        raise ValueError(f"raw zone must be a file://, s3:// or s3a:// URI, not {raw_uri!r}")
    from include.platform.s3_upload import upload_files

    with tempfile.TemporaryDirectory(prefix="air-quality-landing-") as tmp:
        uploaded = upload_files(aws_conn_id, Path(tmp), land_files(source_dir, tmp), raw_uri)
    # upload_files names objects s3://; give them back in the lake's own scheme.
    return sorted(f"{scheme}://{uri.split('://', 1)[1]}" for uri in uploaded)
