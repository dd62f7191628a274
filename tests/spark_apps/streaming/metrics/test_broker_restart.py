"""Broker restart in the middle of the stream. Tansu's memory engine loses everything on
restart, so this uses the durable configuration the embedded stack offers
(DP_KAFKA_STORAGE=s3://..., the log kept in the embedded moto): after the restart every
event is still counted exactly once in MySQL and in the lake files."""
from __future__ import annotations

import os
import uuid

import pytest

from include.platform import stack
from test_pipeline import Pipeline, assert_results_exact

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(900)]



@pytest.fixture
def durable_broker(kafka_broker, tmp_path, monkeypatch):
    KafkaBroker = type(kafka_broker)  # the suite's broker handle (topics, produce, consume_all)
    monkeypatch.setenv("DP_KAFKA_STORAGE", f"s3://tansu-{uuid.uuid4().hex[:8]}/")
    cfg = stack.StackConfig(home=tmp_path / "home", kafka_port=stack.free_port(), moto_port=stack.free_port())
    env = dict(os.environ)
    moto, broker = stack.moto_service(cfg), stack.broker_service(cfg)
    stack.start_service(cfg, moto, env)
    stack.start_service(cfg, broker, env)

    def restart():
        assert stack.stop_service(cfg, "kafka")
        stack.start_service(cfg, stack.broker_service(cfg), env)

    yield KafkaBroker(bootstrap=f"127.0.0.1:{cfg.kafka_port}", process=None), restart
    stack.stop_service(cfg, "kafka")
    stack.stop_service(cfg, "moto")


def test_broker_restart_loses_and_doubles_nothing(kafka_spark, durable_broker, fresh_results_db, tmp_path):
    broker, restart_broker = durable_broker
    pipeline = Pipeline(kafka_spark, broker, fresh_results_db, tmp_path)
    pipeline.produce(seed=31, offsets_s=[5, 35], invalid_share=0.1)
    pipeline.run_job_a()
    pipeline.run_job_b()

    restart_broker()

    pipeline.produce(seed=32, offsets_s=[65], invalid_share=0.1)
    pipeline.run_job_a()
    pipeline.run_job_b()
    assert_results_exact(pipeline)
