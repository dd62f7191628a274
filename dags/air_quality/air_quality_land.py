"""Air quality, step 1 of 3: land new CPCB station exports in the lake's raw zone.

Takes every `.csv` / `.xlsx` export in `DP_AIR_QUALITY_INCOMING` (a local folder; new
files are dropped there by whoever collects them), converts `.xlsx` cell by cell to the
CSV layout (preamble kept), and writes them to `raw/air_quality/` in the lake: S3 through
the S3Hook on `aws_default` (moto's bucket in the embedded stack), or a local folder
(`DP_LAKE=file`). Landing the same files again overwrites them.

Produces the `air_quality_raw` asset, which triggers `air_quality_convert`.
Skips (no asset event) when there is nothing to land.
"""
from __future__ import annotations

from airflow.sdk import DAG, task

from include.air_quality.assets import RAW_URI, air_quality_raw
from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE

cfg = platform_settings.load()

with DAG(
    dag_id="air_quality_land",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["batch", "air-quality", "landing"],
) as dag:

    @task(outlets=[air_quality_raw])
    def land_exports(incoming: str, raw_uri: str) -> list[str]:
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowSkipException

        from include.air_quality.landing import land_into_lake

        source = Path(incoming)
        if not source.is_dir() or (not any(source.rglob("*.csv")) and not any(source.rglob("*.xlsx"))):
            raise AirflowSkipException(f"no exports waiting in {incoming}")
        return land_into_lake(source, raw_uri, cfg.aws_conn_id)

    land_exports(cfg.air_quality_incoming, RAW_URI)
