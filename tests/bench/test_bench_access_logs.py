"""The access-log benchmark still runs end to end (tiny sizes; timings are never checked)."""
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_and_prints_its_table(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_access_logs.py"), "--lines", "3000", "--files", "2",
         "--warmup-lines", "500", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    table = [line for line in run.stdout.splitlines() if line.startswith("| 3,000 |")]
    assert len(table) == 1
    # the awk reference is approximate (it splits on spaces), so only the shape is compared
    spark = next(line for line in run.stderr.splitlines() if line.startswith("spark:"))
    assert spark.endswith(", 3000)")  # every generated line accounted for
