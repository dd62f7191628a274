"""One definition per Spark job, rendered either to a local spark-submit
(SparkSubmitOperator) or to an EMR step (command-runner.jar + spark-submit).

The spark-submit arguments are produced in exactly one place,
:meth:`SparkJob.submit_args`; the local operator is built from the same pieces
and ``tests/platform/test_spark_jobs.py`` checks that the provider's rendered
command and the EMR step carry identical arguments. Only the artifact root
differs (``file://.../build`` vs ``s3://.../spark_apps``).
"""
from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from include.platform.settings import REPO_ROOT, Settings

BUNDLE_NAME = "spark_apps.zip"
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

    def submit_args(self, apps_uri: str) -> list[str]:
        """spark-submit arguments after --master/--deploy-mode, in SparkSubmitHook's order."""
        argv: list[str] = []
        for key, value in self.all_conf().items():
            argv += ["--conf", f"{key}={value}"]
        argv += ["--py-files", f"{apps_uri.rstrip('/')}/{BUNDLE_NAME}"]
        argv += ["--name", self.name]
        argv += [f"{apps_uri.rstrip('/')}/{self.entry}", *self.args]
        return argv

    def emr_step(self, settings: Settings, action_on_failure: str = "CONTINUE") -> dict[str, Any]:
        """The EMR step running this job (cluster deploy mode on YARN)."""
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
                    *self.submit_args(settings.spark_apps_uri),
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


def build_bundle(out_dir: str | os.PathLike | None = None) -> Path:
    """Write ``build/spark_apps.zip`` (the package for --py-files) and a copy of the
    entry files under ``build/spark_apps/``: the artifact root that is used locally
    as is and uploaded to S3 for EMR.
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
    return out / BUNDLE_NAME


if __name__ == "__main__":
    print(build_bundle())
