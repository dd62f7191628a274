"""Results-DB credentials from AWS Secrets Manager (what the jobs read on EMR), against moto: the
RDS-style JSON secret named by DP_RESULTS_DB_SECRET_ID, in the region the cluster configuration
passes as AWS_DEFAULT_REGION (include/platform/runners.py); without a region boto3 cannot even
build the client, which is why the region is passed. The password never shows in the repr."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import NoRegionError

from spark_apps.common.mysql import ResultsDb

REGION = "eu-west-1"  # not moto's nor boto3's default: the passed region is the one used
SECRET = {"engine": "mysql", "host": "results.cluster-x.eu-west-1.rds.amazonaws.com", "port": 3306,
          "username": "dataplatform", "password": "s3cr3t-Pa55", "dbname": "dataplatform"}


@pytest.fixture
def secret_id(moto_server, monkeypatch, tmp_path):
    for name, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": str(tmp_path / "no-config")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DP_RESULTS_DB_URL", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    name = f"dataplatform/results-db-{tmp_path.name}"
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=name, SecretString=json.dumps(SECRET))
    monkeypatch.setenv("DP_RESULTS_DB_SECRET_ID", name)
    return name


def test_credentials_come_from_the_secret_in_the_passed_region(secret_id, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    db = ResultsDb.from_env()
    assert (db.host, db.port, db.user, db.password, db.database) == (
        SECRET["host"], 3306, "dataplatform", "s3cr3t-Pa55", "dataplatform")
    assert "s3cr3t" not in repr(db) and "s3cr3t" not in str(db)


def test_without_a_region_the_secret_cannot_be_read(secret_id, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(NoRegionError):
        ResultsDb.from_env()
