#!/bin/bash
# EMR bootstrap action: the Python packages the platform's Spark apps import on the
# cluster (the apps themselves arrive as spark_apps.zip through --py-files).
set -euo pipefail
sudo python3 -m pip install --quiet "pymysql>=1.1,<1.2" "numpy" "pyarrow" "confluent-kafka>=2.6" "protobuf>=5" "boto3"
