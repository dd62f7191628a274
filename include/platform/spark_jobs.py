"""One definition per Spark job, rendered either to a local spark-submit
(SparkSubmitOperator) or to an EMR step (command-runner.jar + spark-submit).

The spark-submit arguments are produced in exactly one place,
:meth:`SparkJob.submit_args`; the local operator is built from the same pieces
and ``tests/platform/test_spark_jobs.py`` checks that the provider's rendered
command and the EMR step carry identical arguments. Only the artifact root
differs (``file://.../build`` vs ``s3://.../spark_apps``), and the EMR step names the
platform's connector jars for the cluster's Spark line with ``--jars`` (uploaded in
``build/jars-spark-4.0/`` for emr-spark-8.0.0), which local applications get from
``spark.jars`` in their Spark configuration instead.
"""
from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from include.platform import jvm
from include.platform.settings import REPO_ROOT, Settings

BUNDLE_NAME = "spark_apps.zip"
# build/jars/: the `spark` jar group of jvm/pom.xml (Spark 4.2); build/jars-<group>/ each other
# Spark line's group (jars-spark-4.0/ for emr-spark-8.0.0), shipped beside the bundle; MANIFEST
# lists the file names in --jars order.
JARS_DIR = "jars"
JARS_MANIFEST = "MANIFEST"
# The Python packages the jobs import on an EMR cluster (the bootstrap action installs them,
# pinned from requirements.lock; pyspark is the cluster's own). cryptography: PyMySQL needs
# it for MySQL 8's caching_sha2_password. websockets: the WebSocket ingest job's data source.
# matplotlib: the energy analysis draws its charts on the driver (on the cluster in cluster mode).
EMR_PYTHON_PACKAGES = ("pymysql", "cryptography", "boto3", "numpy", "pandas", "pyarrow", "protobuf",
                       "cassandra-driver", "websockets", "matplotlib")
EMR_PYTHON = "/usr/bin/python3.11"  # emr-spark-8.0.0's Python 3.11


def jars_dir(group: str) -> str:
    """Folder of a jar group in the artifact: ``jars`` for `spark`, ``jars-<group>`` for the others."""
    return JARS_DIR if group == "spark" else f"{JARS_DIR}-{group}"
# Settings every job gets, locally and on EMR.
COMMON_CONF: Mapping[str, str] = {
    "spark.sql.session.timeZone": "UTC",
}


@dataclass(frozen=True)
class SparkJob:
    """A Spark application of the platform: an entry file inside ``spark_apps/`` plus its arguments.

    ``args`` may contain Airflow templates (``{{ ds }}``); both renderings template them.
    """

    name: str
    entry: str  # path relative to the artifact root, e.g. "spark_apps/air_quality/convert.py"
    args: Sequence[str] = ()
    conf: Mapping[str, str] = field(default_factory=dict)

    def all_conf(self) -> dict[str, str]:
        return {**COMMON_CONF, **self.conf}

    def submit_args(self, apps_uri: str, jars: Sequence[str] = ()) -> list[str]:
        """spark-submit arguments after --master/--deploy-mode, in SparkSubmitHook's order."""
        argv: list[str] = []
        for key, value in self.all_conf().items():
            argv += ["--conf", f"{key}={value}"]
        argv += ["--py-files", f"{apps_uri.rstrip('/')}/{BUNDLE_NAME}"]
        if jars:
            argv += ["--jars", ",".join(jars)]
        argv += ["--name", self.name]
        argv += [f"{apps_uri.rstrip('/')}/{self.entry}", *self.args]
        return argv

    def emr_step(self, settings: Settings, action_on_failure: str = "CONTINUE") -> dict[str, Any]:
        """The EMR step running this job (cluster deploy mode on YARN), with the connector
        jars of the artifact (:func:`emr_jars`) as ``--jars``."""
        return {
            "Name": self.name,
            "ActionOnFailure": action_on_failure,
            "HadoopJarStep": {
                "Jar": "command-runner.jar",
                "Args": [
                    "spark-submit",
                    "--master",
                    "yarn",
                    "--deploy-mode",
                    "cluster",
                    *self.submit_args(settings.spark_apps_uri, jars=emr_jars(settings)),
                ],
            },
        }

    def local_operator(self, settings: Settings, task_id: str | None = None, conn_id: str | None = None, **kwargs):
        """A SparkSubmitOperator running this job against ``conn_id`` (default ``settings.spark_conn_id``)."""
        from include.platform.operators import PlatformSparkSubmitOperator

        apps = settings.spark_apps_uri.rstrip("/")
        return PlatformSparkSubmitOperator(
            task_id=task_id or self.name,
            conn_id=conn_id or settings.spark_conn_id,
            mysql_conn_id=settings.mysql_conn_id,
            application=f"{apps}/{self.entry}",
            py_files=f"{apps}/{BUNDLE_NAME}",
            name=self.name,
            conf=self.all_conf(),
            application_args=list(self.args),
            **kwargs,
        )


def emr_jars(settings: Settings) -> list[str]:
    """The connector jars an EMR step passes to spark-submit: the jar group of the cluster's
    Spark line (``settings.emr_spark_line``: `spark-4.0` on emr-spark-8.0.0) as uploaded with
    the artifact (``<apps_uri>/jars-spark-4.0/<file>``, see :func:`build_bundle`).

    The names come from the checked-in jvm/jars.sha256, not from the jar folder: DAG files
    render the steps at parse time, where only reading the repository is allowed.
    """
    group = jvm.spark_line_group(settings.emr_spark_line)
    root = settings.spark_apps_uri.rstrip("/")
    return [f"{root}/{jars_dir(group)}/{name}" for name in jvm.pinned_jar_names(group)]


def _copy_jars(out: Path, group: str) -> Path:
    """``out/<jars_dir(group)>/``: the resolved jars of ``group`` (verified against the lock) and MANIFEST."""
    pins = jvm.read_lock().get(group) or {}
    jars = jvm.classpath(group)  # JarsError "run `make deps`" when they are not resolved
    jvm.verify(group, jvm.group_dir(group), pins)
    target = out / jars_dir(group)
    target.mkdir(parents=True, exist_ok=True)
    names = [jar.name for jar in jars]
    for stale in target.glob("*.jar"):
        if stale.name not in names:
            stale.unlink()
    for jar in jars:
        dest = target / jar.name
        src_stat = jar.stat()
        if dest.exists() and (dest.stat().st_size, dest.stat().st_mtime_ns) == (src_stat.st_size, src_stat.st_mtime_ns):
            continue  # copied by a previous build (copy2 keeps the time stamp)
        shutil.copy2(jar, dest)
    (target / JARS_MANIFEST).write_text("".join(f"{name}\n" for name in names))
    return target


def emr_requirements(lock: Path = REPO_ROOT / "requirements.lock") -> str:
    """requirements.txt of the EMR bootstrap: :data:`EMR_PYTHON_PACKAGES` at their requirements.lock versions."""
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not line.startswith((" ", "#")):
            pins[name.lower()] = version
    missing = [name for name in EMR_PYTHON_PACKAGES if name not in pins]
    if missing:
        raise ValueError(f"requirements.lock pins no {missing}: the EMR bootstrap installs them")
    return "".join(f"{name}=={pins[name]}\n" for name in EMR_PYTHON_PACKAGES)


def build_bundle(out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``build/spark_apps.zip`` (the package for --py-files) and a copy of the
    entry files under ``build/spark_apps/``: the artifact root that is used locally
    as is and uploaded to S3 for EMR. ``build/jars/`` holds the `spark` jar group of
    jvm/pom.xml, ``build/jars-<group>/`` every other Spark line's group that `make deps`
    resolved, for the EMR steps' --jars (local runs use them from the jar folder; the EMR
    upload refuses an artifact without the cluster's group). ``build/bootstrap/`` holds the
    EMR bootstrap action with the packages it installs (requirements.txt) and the whole lock
    as pip constraints for their dependencies.
    """
    out = Path(out_dir or REPO_ROOT / "build")
    src = REPO_ROOT / "spark_apps"
    out.mkdir(parents=True, exist_ok=True)
    tmp_zip = out / (BUNDLE_NAME + ".tmp")
    with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        # Python modules and the Avro schemas they read with pkgutil.get_data (streaming/websocket).
        for path in sorted(p for p in src.rglob("*") if p.suffix in (".py", ".avsc")):
            if "__pycache__" in path.parts:
                continue
            zf.write(path, path.relative_to(REPO_ROOT).as_posix())
    os.replace(tmp_zip, out / BUNDLE_NAME)
    tree = out / "spark_apps"
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(src, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # EMR bootstrap actions travel with the artifact (uploaded next to the bundle).
    bootstrap = out / "bootstrap"
    bootstrap.mkdir(exist_ok=True)
    for script in (REPO_ROOT / "include" / "emr").glob("*.sh"):
        shutil.copy2(script, bootstrap / script.name)
    (bootstrap / "requirements.txt").write_text(emr_requirements())
    shutil.copy2(REPO_ROOT / "requirements.lock", bootstrap / "constraints.txt")
    _copy_jars(out, "spark")
    for group in jvm.SPARK_LINE_GROUPS.values():
        if group != "spark" and (jvm.group_dir(group) / jvm.STAMP).exists():
            _copy_jars(out, group)
    return out / BUNDLE_NAME


if __name__ == "__main__":
    print(build_bundle())
