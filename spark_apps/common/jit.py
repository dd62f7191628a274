"""JVM options of the applications whose Spark plans generate huge methods (Spark-free, so DAG
files can read it at parse time).

HotSpot does not JIT-compile a method above 8,000 bytes of bytecode (``-XX:+DontCompileHugeMethods``,
the default) and runs it interpreted. Spark's whole-stage generated code for a wide projection is
one such method: the air-quality parse (reader.parse_raw, about sixty columns of CASE WHENs over
``from_csv``) ran 4x slower than with the limit lifted, 23 s against 6 s for 1 M lines on this
machine; with it the 10 M-row conversion took 142 s instead of 228 s (docs/benchmarks.md, 2026-12-04).
Spark's own alternative, ``spark.sql.codegen.hugeMethodLimit=8000``, gives up whole-stage codegen
for such plans instead and measured 12 s.

``spark.*.defaultJavaOptions`` and not ``extraJavaOptions``: Spark prepends the former to the
latter, so the options a cluster sets itself (EMR's GC and OOM flags in extraJavaOptions) stay.
They only act when a JVM starts: on spark-submit's command line (SparkJob.conf) or in the
SparkSession builder of a plain ``python -m`` run (spark_apps.common.session.get_spark).
"""
from __future__ import annotations

JIT_HUGE_METHODS = "-XX:-DontCompileHugeMethods"
JIT_HUGE_METHODS_CONF = {
    "spark.driver.defaultJavaOptions": JIT_HUGE_METHODS,
    "spark.executor.defaultJavaOptions": JIT_HUGE_METHODS,
}
