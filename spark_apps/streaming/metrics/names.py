"""Names shared by the metrics producer and the Spark jobs (no Spark import: the producer
runs in Airflow tasks and CLIs)."""

METRIC_NAMES = (
    "memory_usage_gb",
    "disk_io_rate_mbps",
    "network_throughput_mbps",
    "response_time_ms",
    "error_rate_percentage",
)
