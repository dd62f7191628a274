#!/bin/bash
# Results database of the docker platform, run once by the mysql image on an empty data
# directory (/docker-entrypoint-initdb.d). Same database, user and grants as the embedded
# stack (include/platform/stack.py ensure_mariadb): a dedicated database and a
# least-privilege user, never root. The password comes from the environment (.env), which
# is why this is a shell script around the SQL rather than a plain .sql file.
# Works whether the entrypoint sources it or executes it.
: "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is required}"
: "${MYSQL_RESULTS_PASSWORD:?MYSQL_RESULTS_PASSWORD is required}"
results_db=${DP_RESULTS_DB_NAME:-dataplatform}
results_user=${DP_RESULTS_DB_USER:-dataplatform}
case "$results_db$results_user" in
  *[!A-Za-z0-9_]*) echo "DP_RESULTS_DB_NAME / DP_RESULTS_DB_USER: letters, digits and _ only" >&2; exit 1 ;;
esac
# SQL string literal: double backslashes and single quotes.
password_sql=$(printf '%s' "$MYSQL_RESULTS_PASSWORD" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")

# During initialisation the server listens on its socket only; the root password is passed
# through MYSQL_PWD so that it never shows in the process list.
MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --protocol=socket -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`${results_db}\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '${results_user}'@'%' IDENTIFIED BY '${password_sql}';
ALTER USER '${results_user}'@'%' IDENTIFIED BY '${password_sql}';
-- Only what the pipelines do: read/write results, create their tables and the per-run
-- staging tables that make writes idempotent (spark_apps/common/mysql.py).
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, CREATE VIEW ON \`${results_db}\`.* TO '${results_user}'@'%';
FLUSH PRIVILEGES;
SQL
