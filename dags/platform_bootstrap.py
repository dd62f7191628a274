"""Platform bootstrap: create what every pipeline needs (Kafka topics, the results schema in
MySQL, the Cassandra keyspaces and tables, the S3 buckets). Idempotent, so it is safe to trigger again at any time."""
from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, task

from include.platform import settings as platform_settings
from include.platform.dag_defaults import DEFAULT_ARGS, START_DATE, TEMPLATE_SEARCHPATH

cfg = platform_settings.load()

with DAG(
    dag_id="platform_bootstrap",
    doc_md=__doc__ + """

| task | creates |
|---|---|
| `create_kafka_topics` | the topics of `include/platform/topics.py` (partitions, retention) on `kafka_default` |
| `create_results_schema` | `include/sql/results_schema.sql` in the results DB (`mysql_results`) |
| `create_cassandra_schema` | keyspaces and tables of `include/cassandra/schema.py` (`DP_CASSANDRA_REPLICATION`) |
| `create_bucket_*` | the lake and artifacts buckets on `aws_default` (moto locally, S3 on AWS) |
""",
    schedule="@once",
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["platform", "bootstrap"],
    template_searchpath=TEMPLATE_SEARCHPATH,
) as dag:

    @task
    def create_kafka_topics() -> list[str]:
        # The Kafka provider has a hook but no operator for this, and its create_topic sets
        # no topic config (retention): its admin client does the work in ensure_topics.
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

        from include.platform.topics import ensure_topics

        return ensure_topics(KafkaAdminClientHook(kafka_config_id=cfg.kafka_conn_id).get_conn)

    create_kafka_topics()

    @task
    def create_cassandra_schema() -> list[str]:
        from include.cassandra.schema import bootstrap

        return bootstrap(cfg.cassandra_replication, contact_points=cfg.cassandra_contact_points,
                         port=cfg.cassandra_port, local_dc=cfg.cassandra_local_dc)

    create_cassandra_schema()

    SQLExecuteQueryOperator(
        task_id="create_results_schema",
        conn_id=cfg.mysql_conn_id,
        sql="results_schema.sql",
        split_statements=True,
    )

    for bucket in (cfg.lake_bucket, cfg.artifacts_bucket):
        S3CreateBucketOperator(
            task_id=f"create_bucket_{bucket.replace('-', '_')}",
            bucket_name=bucket,
            aws_conn_id=cfg.aws_conn_id,
        )
