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
