#!/usr/bin/env bash
# Run at image BUILD time (never at run time: no `--packages`, no Maven access when jobs run).
# Resolves, with their runtime dependencies, the jars the docker platform adds to Spark:
#   * org.apache.spark:spark-sql-kafka-0-10   -> the native format("kafka")
#                                               (compose sets DP_KAFKA_SPARK_FORMAT=native)
#   * org.apache.hadoop:hadoop-aws (+ the AWS SDK v2 bundle) -> s3a:// against MinIO
# Versions are read from the Spark distribution this runs in (its spark-core and
# hadoop-client-api jars), so they always match the image; resolution uses the Ivy jar that
# Spark itself ships (the resolver behind --packages). Dependencies Spark already ships
# (slf4j, lz4, snappy, zstd, ...) are skipped so that no class is on the classpath twice.
#
# usage: fetch-jars.sh OUT_DIR
set -euo pipefail
out=${1:?usage: fetch-jars.sh OUT_DIR}
jars=${SPARK_HOME:-/opt/spark}/jars

core=$(basename "$(ls "$jars"/spark-core_*.jar)" .jar)            # spark-core_2.13-4.2.0
scala=${core#spark-core_}; scala=${scala%%-*}                       # 2.13
spark=${core##*-}                                                   # 4.2.0
hadoop=$(basename "$(ls "$jars"/hadoop-client-api-*.jar)" .jar)
hadoop=${hadoop##*-}                                                # 3.5.0
ivy=$(ls "$jars"/ivy-*.jar)
echo "Spark ${spark} (Scala ${scala}), Hadoop ${hadoop}: resolving connector jars"

tmp=$(mktemp -d)
for coord in "org.apache.spark spark-sql-kafka-0-10_${scala} ${spark}" \
             "org.apache.hadoop hadoop-aws ${hadoop}"; do
  # shellcheck disable=SC2086  # coord is "org module revision", three arguments
  java -jar "$ivy" -warn -cache "$tmp/cache" -dependency $coord \
    -confs default -types jar bundle \
    -retrieve "$tmp/jars/[artifact]@[revision](-[classifier]).[ext]"
done

mkdir -p "$out"
for jar in "$tmp"/jars/*.jar; do
  name=$(basename "$jar")
  artifact=${name%%@*}
  if compgen -G "$jars/${artifact}-[0-9]*.jar" >/dev/null; then
    echo "skip ${name/@/-}: Spark already ships ${artifact}"
    continue
  fi
  cp "$jar" "$out/${name/@/-}"
done
rm -rf "$tmp"

# Fail the build, not the first streaming job, when something is missing.
for required in "spark-sql-kafka-0-10_${scala}-${spark}.jar" "spark-token-provider-kafka-0-10_${scala}-${spark}.jar" \
                "hadoop-aws-${hadoop}.jar"; do
  [ -f "$out/$required" ] || { echo "error: $required was not resolved" >&2; exit 1; }
done
compgen -G "$out/kafka-clients-*.jar" >/dev/null || { echo "error: kafka-clients was not resolved" >&2; exit 1; }
ls -l "$out"
