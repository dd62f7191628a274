"""The air-quality pipeline's data sets, as Airflow Assets shared by its three DAGs."""
from __future__ import annotations

from airflow.sdk import Asset

from include.platform import settings as platform_settings
from spark_apps.common.lake import join

cfg = platform_settings.load()

RAW_URI = join(cfg.lake_uri, "raw", "air_quality")
PARQUET_URI = join(cfg.lake_uri, "curated", "air_quality_hourly")
# Rows of daily files (Kaggle's station_day.csv / city_day.csv), written by the same conversion.
DAILY_URI = join(cfg.lake_uri, "curated", "air_quality_daily")
QUARANTINE_URI = join(cfg.lake_uri, "quarantine", "air_quality")

air_quality_raw = Asset(name="air_quality_raw", uri=platform_settings.asset_uri(RAW_URI))
air_quality_parquet = Asset(name="air_quality_parquet", uri=platform_settings.asset_uri(PARQUET_URI))
