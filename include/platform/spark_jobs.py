"""One definition per Spark job, rendered either to a local spark-submit
(SparkSubmitOperator) or to an EMR step (command-runner.jar + spark-submit).

The spark-submit arguments are produced in exactly one place,
:meth:`SparkJob.submit_args`; the local operator is built from the same pieces
and ``tests/platform/test_spark_jobs.py`` checks that the provider's rendered
command and the EMR step carry identical arguments. Only the artifact root
differs (``file://.../build`` vs ``s3://.../spark_apps``), and the EMR step names the
platform's connector jars with ``--jars`` (uploaded in ``build/jars/``), which local
applications get from ``spark.jars`` in their Spark configuration instead.
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
# build/jars/: the `spark` jar group of jvm/pom.xml, shipped beside the bundle; MANIFEST
# lists the file names in --jars order.
JARS_DIR = "jars"
JARS_MANIFEST = "MANIFEST"
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
                    *self.submit_args(settings.spark_apps_uri, jars=emr_jars(settings.spark_apps_uri)),
                ],
            },
        }

    def local_operator(self, settings: Settings, task_id: str | None = None, **kwargs):
        """A SparkSubmitOperator running this job against ``settings.spark_conn_id``."""
        from include.platform.operators import PlatformSparkSubmitOperator

        apps = settings.spark_apps_uri.rstrip("/")
        return PlatformSparkSubmitOperator(
            task_id=task_id or self.name,
            conn_id=settings.spark_conn_id,
            mysql_conn_id=settings.mysql_conn_id,
            application=f"{apps}/{self.entry}",
            py_files=f"{apps}/{BUNDLE_NAME}",
            name=self.name,
            conf=self.all_conf(),
            application_args=list(self.args),
            **kwargs,
        )


def emr_jars(apps_uri: str) -> list[str]:
    """The connector jars an EMR step passes to spark-submit: the `spark` group of jvm/pom.xml
    as uploaded with the artifact (``<apps_uri>/jars/<file>``, see :func:`build_bundle`).

    The names come from the checked-in jvm/jars.sha256, not from the jar folder: DAG files
    render the steps at parse time, where only reading the repository is allowed.

    The jars are built for the pyspark in requirements.lock (Spark 4.2.0, Scala 2.13); the
    EMR release DP_EMR_RELEASE names brings its own Spark (emr-spark-8.0.0: Spark 4.0.2,
    emr-7.x: Spark 3.5), so connector jars matching the cluster's Spark release are a
    follow-up (issue 17).
    """
    root = apps_uri.rstrip("/")
    return [f"{root}/{JARS_DIR}/{name}" for name in jvm.pinned_jar_names("spark")]


def _copy_jars(out: Path) -> Path:
    """``out/jars/``: the resolved `spark` jars (verified against the lock) and MANIFEST."""
    pins = jvm.read_lock().get("spark") or {}
    jars = jvm.classpath("spark")  # JarsError "run `make deps`" when they are not resolved
    jvm.verify("spark", jvm.group_dir("spark"), pins)
    target = out / JARS_DIR
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


def build_bundle(out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``build/spark_apps.zip`` (the package for --py-files) and a copy of the
    entry files under ``build/spark_apps/``: the artifact root that is used locally
    as is and uploaded to S3 for EMR. ``build/jars/`` holds the `spark` jar group of
    jvm/pom.xml for the EMR steps' --jars (local runs use them from the jar folder).
    """
    out = Path(out_dir or REPO_ROOT / "build")
    src = REPO_ROOT / "spark_apps"
    out.mkdir(parents=True, exist_ok=True)
    tmp_zip = out / (BUNDLE_NAME + ".tmp")
    with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*.py")):
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
    _copy_jars(out)
    return out / BUNDLE_NAME


if __name__ == "__main__":
    print(build_bundle())
