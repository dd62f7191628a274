"""Assets of the streaming pipelines that batch DAGs are scheduled on."""
from __future__ import annotations

from airflow.sdk import Asset

from include.platform import settings as platform_settings
from spark_apps.common.lake import join

cfg = platform_settings.load()

# The turnstile job's window files (spark_apps/streaming/turnstile/job.py WINDOWS_SUBDIR). A long-running
# job cannot emit Asset events itself: turnstile_streaming_health does, when the job committed a
# batch since the last event, so turnstile_warehouse follows the lake while readings flow.
turnstile_windows = Asset(name="turnstile_windows",
                          uri=platform_settings.asset_uri(join(cfg.lake_uri, "streaming", "turnstile_windows")))
