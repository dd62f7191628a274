"""The EMR bootstrap action (include/emr/install_python_deps.sh) and what `dp build` gives it:
the jobs' packages pinned at their requirements.lock versions (cryptography among them, for
MySQL 8's caching_sha2_password), the whole lock as constraints, installed with the Python the
cluster configuration names. The script runs here for real, with `aws` and `sudo` replaced by
stand-ins that copy from a local folder and run the command (no AWS, no root)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from include.platform.spark_jobs import EMR_PYTHON_PACKAGES, emr_requirements

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "include" / "emr" / "install_python_deps.sh"


def _lock_pins() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.MULTILINE)}


def test_requirements_pin_the_jobs_packages_at_the_lock_versions():
    pins = _lock_pins()
    lines = emr_requirements().splitlines()
    assert lines == [f"{name}=={pins[name]}" for name in EMR_PYTHON_PACKAGES]
    assert {"pymysql", "cryptography", "boto3", "pyarrow", "protobuf", "cassandra-driver"} <= set(EMR_PYTHON_PACKAGES)
    assert "pyspark" not in EMR_PYTHON_PACKAGES  # the cluster's own


def test_the_script_installs_them_with_the_given_python(tmp_path):
    bucket = tmp_path / "bucket" / "bootstrap"
    bucket.mkdir(parents=True)
    (bucket / "requirements.txt").write_text(emr_requirements())
    (bucket / "constraints.txt").write_text((ROOT / "requirements.lock").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "pip-calls"
    shims = {
        # aws s3 cp --quiet s3://artifacts/bootstrap/<file> <dest>
        "aws": f'#!/bin/sh\nsrc="$4"; cp "{bucket}/${{src##*/}}" "$5"\n',
        "sudo": '#!/bin/sh\nexec "$@"\n',
        # the cluster's python: records each pip call and the requirements it was given
        "python3.11": f'#!/bin/sh\necho "$@" >> "{record}"\n'
                      f'for a in "$@"; do case "$a" in *requirements.txt) cat "$a" >> "{record}";; esac; done\n',
    }
    for name, text in shims.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(SCRIPT), "s3://artifacts/bootstrap", str(bin_dir / "python3.11")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = record.read_text().splitlines()
    assert calls[0] == "-m pip --version"
    install = calls[1].split()
    assert install[:4] == ["-m", "pip", "install", "--quiet"] and "--only-binary=:all:" in install
    assert install[install.index("-r") + 1].endswith("/requirements.txt")
    assert install[install.index("-c") + 1].endswith("/constraints.txt")
    assert calls[2:] == emr_requirements().splitlines()


def test_the_script_needs_its_arguments():
    run = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and "usage: install_python_deps.sh" in run.stderr
