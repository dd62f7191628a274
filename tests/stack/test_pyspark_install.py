"""pyspark-client (pulled in by the Spark provider) overwrites pyspark's Python files with
its own. Fail when the installed Python package and the jars are not one Spark release."""
from __future__ import annotations

import base64
import hashlib
import re
from importlib import metadata
from pathlib import Path


def test_python_package_and_jars_are_the_same_release():
    import pyspark

    jars = list((Path(pyspark.__file__).parent / "jars").glob("spark-core_*.jar"))
    assert jars, "pyspark's jars are missing: the full pyspark package is not installed"
    jar_version = re.search(r"spark-core_[\d.]+-(.+)\.jar", jars[0].name).group(1)
    assert pyspark.__version__ == jar_version == metadata.version("pyspark")


def test_pyspark_python_files_are_pyspark_own():
    """Every .py file pyspark's wheel installed still has the hash in its RECORD."""
    dist = metadata.distribution("pyspark")
    checked = mismatched = 0
    for entry in dist.files or []:
        if not entry.hash or not str(entry).endswith(".py") or not str(entry).startswith("pyspark/"):
            continue
        data = Path(entry.locate()).read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.new(entry.hash.mode, data).digest()).rstrip(b"=").decode()
        checked += 1
        if digest != entry.hash.value:
            mismatched += 1
    assert checked > 500
    assert mismatched == 0, f"{mismatched} pyspark files were overwritten (pyspark-client drift?)"
