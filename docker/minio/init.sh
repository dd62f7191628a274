#!/bin/sh
# One-shot run by the minio-init service (minio/mc image) once MinIO is healthy. Idempotent.
#   * the platform's buckets (the platform_bootstrap DAG creating them again is a no-op);
#   * a least-privilege access key for the platform (Airflow, Spark), allowed on those two
#     buckets only; the MinIO root credentials stay with MinIO and this script.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${DP_S3_ACCESS_KEY:?}" "${DP_S3_SECRET_KEY:?}"
lake=${DP_LAKE_BUCKET:-dataplatform-lake}
artifacts=${DP_ARTIFACTS_BUCKET:-dataplatform-artifacts}

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
for bucket in "$lake" "$artifacts"; do
  mc mb --ignore-existing "local/$bucket"
done

cat > /tmp/dataplatform-policy.json <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:*"],
      "Resource": [
        "arn:aws:s3:::${lake}", "arn:aws:s3:::${lake}/*",
        "arn:aws:s3:::${artifacts}", "arn:aws:s3:::${artifacts}/*"
      ]
    }
  ]
}
JSON
mc admin policy create local dataplatform /tmp/dataplatform-policy.json
mc admin user add local "$DP_S3_ACCESS_KEY" "$DP_S3_SECRET_KEY"
# attach fails when the policy is already attached (a re-run): accept exactly that case. Plain
# sh only: the mc image (ubi-micro) has no grep.
if ! mc admin policy attach local dataplatform --user "$DP_S3_ACCESS_KEY"; then
  info=$(mc admin user info local "$DP_S3_ACCESS_KEY")
  case "$info" in
    *dataplatform*) ;;
    *) echo "could not attach the dataplatform policy to the platform's access key" >&2; exit 1 ;;
  esac
fi
echo "buckets ${lake}, ${artifacts} and the platform's access key are ready"
