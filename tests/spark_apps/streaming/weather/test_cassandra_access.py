"""spark_apps/common/cassandra.py without a node: configuration from the environment (Keyspaces'
too, the password never printed), the retry policy's decisions, the re-sending of transient
failures. (Writes against a real node: test_pipeline.py.)"""
from __future__ import annotations

import dataclasses
import ssl

import pytest
from cassandra import ConsistencyLevel, InvalidRequest, WriteTimeout, WriteType
from cassandra.policies import RetryPolicy

from spark_apps.common import cassandra as access


def test_config_from_the_stack_environment_and_overrides():
    config = access.CassandraConfig.from_env({"DP_CASSANDRA_CONTACT_POINTS": "127.0.0.1, 127.0.0.2",
                                                  "DP_CASSANDRA_PORT": "19042"})
    assert (config.contact_points, config.port, config.ssl, config.username) == (("127.0.0.1", "127.0.0.2"), 19042,
                                                                                  False, "")
    assert access.CassandraConfig.from_env({}, contact_points="10.0.0.1", port=None).contact_points == ("10.0.0.1",)
    assert access.CassandraConfig.from_env({}).port == 9042


def test_keyspaces_configuration_tls_and_credentials_never_printed():
    env = {"DP_CASSANDRA_CONTACT_POINTS": "cassandra.eu-west-1.amazonaws.com", "DP_CASSANDRA_PORT": "9142",
           "DP_CASSANDRA_SSL": "true", "DP_CASSANDRA_LOCAL_DC": "eu-west-1", "DP_CASSANDRA_PROTOCOL_VERSION": "4",
           "DP_CASSANDRA_USERNAME": "svc-user-at-123", "DP_CASSANDRA_PASSWORD": "s3cret-pw"}
    config = access.CassandraConfig.from_env(env)
    assert (config.port, config.ssl, config.local_dc, config.protocol_version) == (9142, True, "eu-west-1", 4)
    assert "s3cret-pw" not in repr(config) and "s3cret-pw" not in str(config)
    # Not connected (Cluster() resolves its contact points: this machine has no DNS for AWS).
    cluster = access.make_cluster(dataclasses.replace(config, contact_points=("127.0.0.1",)))
    try:
        assert cluster.port == 9142 and cluster.protocol_version == 4
        assert cluster.ssl_context.verify_mode == ssl.CERT_REQUIRED and cluster.ssl_context.check_hostname is False
        assert type(cluster.auth_provider).__name__ == "PlainTextAuthProvider"
        profile = cluster.profile_manager.default
        assert profile.consistency_level == ConsistencyLevel.LOCAL_QUORUM
        assert profile.load_balancing_policy._child_policy.local_dc == "eu-west-1"
    finally:
        cluster.shutdown()


KEYSPACES_ENV = {
    "DP_CASSANDRA_CONTACT_POINTS": "cassandra.eu-west-1.amazonaws.com", "DP_CASSANDRA_PORT": "9142",
    "DP_CASSANDRA_SSL": "true", "DP_CASSANDRA_SSL_CA_FILE": "/etc/pki/tls/certs/ca-bundle.crt",
    "DP_CASSANDRA_LOCAL_DC": "eu-west-1", "DP_CASSANDRA_PROTOCOL_VERSION": "4",
    "DP_CASSANDRA_SECRET_ID": "dataplatform/keyspaces",
}


def test_keyspaces_configuration_travels_in_the_emr_step_and_the_credentials_come_from_secrets_manager(monkeypatch):
    """A YARN container sees none of the scheduler's DP_CASSANDRA_* variables: everything but the
    credentials reaches the job as step arguments; the job fetches the credentials itself."""
    import json

    import boto3
    from moto import mock_aws

    from include.platform import settings as platform_settings
    from include.streaming.weather_jobs import weather_job
    from spark_apps.streaming.weather.job import parse_args

    for name, value in {**KEYSPACES_ENV, "DP_RUNNER": "emr", "DP_AWS_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    settings = platform_settings.load()
    step_args = weather_job("b-1.msk.example:9098", "s3://lake/c", "s3://lake/s", settings).emr_step(settings)[
        "HadoopJarStep"]["Args"]
    assert "dataplatform/keyspaces" in step_args and not any("password" in a.lower() for a in step_args)

    for name in KEYSPACES_ENV:  # the container's environment: the region only
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    job_args = parse_args(step_args[step_args.index("--bootstrap"):])
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="dataplatform/keyspaces", SecretString=json.dumps({"username": "svc-at-1", "password": "s3cret-pw"}))
        config = access.config_from_arguments(job_args)
    assert (config.contact_points, config.port, config.ssl, config.ssl_ca_file, config.local_dc,
            config.protocol_version) == (("cassandra.eu-west-1.amazonaws.com",), 9142, True,
                                         "/etc/pki/tls/certs/ca-bundle.crt", "eu-west-1", 4)
    assert (config.username, config.password) == ("svc-at-1", "s3cret-pw")


class _Statement:
    def __init__(self, idempotent: bool):
        self.is_idempotent = idempotent


def test_retry_policy_retries_idempotent_writes_only_and_a_bounded_number_of_times():
    policy = access._retry_policy()
    write = (ConsistencyLevel.LOCAL_QUORUM, WriteType.SIMPLE, 2, 1)
    assert policy.on_write_timeout(_Statement(True), *write, retry_num=0) == (RetryPolicy.RETRY,
                                                                               ConsistencyLevel.LOCAL_QUORUM)
    assert policy.on_write_timeout(_Statement(True), *write, retry_num=access.DRIVER_RETRIES)[0] == RetryPolicy.RETHROW
    assert policy.on_write_timeout(_Statement(False), *write, retry_num=0)[0] == RetryPolicy.RETHROW
    assert policy.on_request_error(_Statement(True), ConsistencyLevel.ONE, OSError(), 0)[0] == RetryPolicy.RETRY_NEXT_HOST
    assert policy.on_request_error(_Statement(False), ConsistencyLevel.ONE, OSError(), 0)[0] == RetryPolicy.RETHROW
    assert policy.on_unavailable(_Statement(True), ConsistencyLevel.ONE, 1, 0, 0)[0] == RetryPolicy.RETRY_NEXT_HOST


class _Result:
    def __init__(self, success, result_or_exc=None):
        self.success, self.result_or_exc = success, result_or_exc


def test_transient_failures_are_sent_again_permanent_ones_raise_at_once(monkeypatch):
    from cassandra import concurrent

    timeout = WriteTimeout("timed out", consistency=ConsistencyLevel.LOCAL_QUORUM, required_responses=1,
                           received_responses=0, write_type=WriteType.SIMPLE)
    calls = []

    def fake_execute(session, statement, params, concurrency, raise_on_first_error):
        assert raise_on_first_error is False
        calls.append(list(params))
        return [_Result(False, timeout) if len(calls) == 1 and p[0] % 2 else _Result(True) for p in params]

    monkeypatch.setattr(concurrent, "execute_concurrent_with_args", fake_execute)
    pauses = []
    rows = [(i, None) for i in range(6)]
    assert access.execute_idempotent(None, "stmt", rows, sleep=pauses.append) == 6
    assert [[p[0] for p in call] for call in calls] == [[0, 1, 2, 3, 4, 5], [1, 3, 5]]  # only the failed again
    assert pauses == [access.RETRY_PAUSES_S[0]]
    from cassandra.query import UNSET_VALUE

    assert calls[0][0][1] is UNSET_VALUE  # null bound as unset: no tombstone

    monkeypatch.setattr(concurrent, "execute_concurrent_with_args",
                        lambda *a, **k: [_Result(False, InvalidRequest("no such table"))])
    with pytest.raises(InvalidRequest):
        access.execute_idempotent(None, "stmt", [(1,)], sleep=pauses.append)
    assert len(pauses) == 1  # not retried

    monkeypatch.setattr(concurrent, "execute_concurrent_with_args", lambda *a, **k: [_Result(False, timeout)])
    pauses.clear()
    with pytest.raises(WriteTimeout):
        access.execute_idempotent(None, "stmt", [(1,)], sleep=pauses.append)
    assert pauses == list(access.RETRY_PAUSES_S)
