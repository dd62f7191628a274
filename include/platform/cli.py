"""``dp``: the platform's command line.

    dp up        start the embedded stack (idempotent) and print the UI URL and login
    dp down      stop everything `dp up` started
    dp status    what runs
    dp demo-data write generated input for the demo DAGs into the lake (S3 on moto, or file://)
    dp build     compile Protobuf schemas and zip spark_apps/ for --py-files
    dp run CMD   run CMD with the stack's environment (e.g. `dp run airflow dags list`)
    dp kafka     topics, put, get, lag on the platform's broker (include/platform/kafka_cli.py)
"""
from __future__ import annotations

import argparse
import os
import sys

from include.platform import stack


def _up(args) -> int:
    cfg = stack.StackConfig()
    fresh_password = not cfg.passwords_file.exists()
    stack.up(cfg, with_airflow=not args.no_airflow)
    env = stack.read_env_file(cfg)
    print(f"Kafka broker     {env.get('DP_KAFKA_BOOTSTRAP')}")
    print(f"AWS (moto)       {env.get('AWS_ENDPOINT_URL')}")
    print(f"Lake             {env.get('DP_LAKE_URI')}")
    print(f"Environment      source {cfg.env_file}")
    if not args.no_airflow:
        print(f"Airflow UI       http://localhost:{cfg.airflow_port}")
        password = stack.airflow_password(cfg)
        if fresh_password and password:
            # Shown once; it stays in the passwords file (outside the repo) for later.
            print(f"Login            {stack.AIRFLOW_USER} / {password}   (shown once; kept in {cfg.passwords_file})")
        else:
            print(f"Login            {stack.AIRFLOW_USER} / password in {cfg.passwords_file}")
    return 0


def _down(args) -> int:
    stack.down(stack.StackConfig())
    return 0


def _status(args) -> int:
    for name, pid in stack.status(stack.StackConfig()).items():
        print(f"{name:24s} {'running (pid %d)' % pid if pid else 'stopped'}")
    return 0


def _build(args) -> int:
    stack.build_artifacts()
    return 0


class _LakeFiles:
    """The few file operations ``dp`` does in the lake, without Spark or Hadoop.

    ``file://`` lakes are local folders; ``s3a://`` (the embedded moto's bucket) and
    ``s3://`` go through boto3 against the stack's S3 endpoint (``AWS_ENDPOINT_URL`` of
    stack.env). s3a:// is Hadoop's name for the same objects Spark writes.
    """

    def __init__(self, cfg: stack.StackConfig):
        from include.platform.stack.environment import lake_uri

        self.cfg = cfg
        self.env = stack.read_env_file(cfg)
        self.uri = self.env.get("DP_LAKE_URI") or lake_uri(cfg)
        self._client = None

    @staticmethod
    def _local(uri: str):
        from pathlib import Path
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))

    @staticmethod
    def _bucket_key(uri: str) -> tuple[str, str]:
        bucket, _, key = uri.split("://", 1)[1].partition("/")
        return bucket, key.strip("/")

    @property
    def is_local(self) -> bool:
        return self.uri.startswith("file:")

    def _s3(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            from include.platform.stack import moto

            self._client = boto3.client(
                "s3", endpoint_url=self.env.get("AWS_ENDPOINT_URL") or moto.endpoint(self.cfg),
                region_name=self.env.get("AWS_DEFAULT_REGION") or moto.REGION,
                aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID") or moto.ACCESS_KEY,
                aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY") or moto.ACCESS_KEY,
                config=Config(retries={"max_attempts": 2}, connect_timeout=5),
            )
        return self._client

    def _keys(self, uri: str, delimiter: str = "") -> tuple[list[str], list[str]]:
        """(object keys, folder prefixes) under ``uri``."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = self._bucket_key(uri)
        keys, prefixes = [], []
        try:
            pages = self._s3().get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{key}/" if key else "", Delimiter=delimiter)
            for page in pages:
                keys += [o["Key"] for o in page.get("Contents", [])]
                prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        except (BotoCoreError, ClientError) as exc:
            raise stack.StackError(
                f"cannot list {uri} ({type(exc).__name__}: {exc}): start the stack first (`dp up`)") from None
        return keys, prefixes

    def has_files(self, folder_uri: str, *suffixes: str) -> bool:
        if self.is_local:
            folder = self._local(folder_uri)
            return folder.is_dir() and any(p.name.endswith(suffixes) for p in folder.iterdir() if p.is_file())
        return any(k.endswith(suffixes) for k in self._keys(folder_uri)[0])

    def upload_tree(self, root, folder_uri: str) -> None:
        """Every file under the local folder ``root`` to ``folder_uri``, keeping relative paths."""
        import shutil

        files = sorted(p for p in root.rglob("*") if p.is_file())
        if self.is_local:
            target = self._local(folder_uri)
            for path in files:
                (target / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / path.relative_to(root))
            return
        bucket, key = self._bucket_key(folder_uri)
        for path in files:
            self._s3().upload_file(str(path), bucket, f"{key}/{path.relative_to(root).as_posix()}")

    def subfolders(self, folder_uri: str) -> list[str]:
        """Names of the folders directly under ``folder_uri``, sorted."""
        if self.is_local:
            folder = self._local(folder_uri)
            return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        return sorted({p.rstrip("/").rsplit("/", 1)[-1] for p in self._keys(folder_uri, delimiter="/")[1]})

    def exists(self, file_uri: str) -> bool:
        if self.is_local:
            return self._local(file_uri).is_file()
        return self._bucket_key(file_uri)[1] in self._keys(file_uri.rsplit("/", 1)[0])[0]

    def touch(self, file_uri: str) -> None:
        if self.is_local:
            path = self._local(file_uri)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            return
        bucket, key = self._bucket_key(file_uri)
        self._s3().put_object(Bucket=bucket, Key=key, Body=b"")


def _demo_data(args) -> int:
    """Generated input for the demo DAGs, in the lake's raw zone (never overwrites a day)."""
    import tempfile
    from datetime import date, timedelta
    from pathlib import Path

    from include.generators.access_logs import write_day
    from spark_apps.common.lake import join

    lake = _LakeFiles(stack.StackConfig())
    # The daily DAG's latest run (catchup off) analyses yesterday.
    day = date.today() - timedelta(days=1)
    raw = join(lake.uri, "raw", "access_logs")
    folder = join(raw, f"date={day}")
    if not lake.has_files(folder, ".log", ".log.gz"):
        # Generated locally, then copied into the lake (a folder or the S3 bucket).
        with tempfile.TemporaryDirectory(prefix="dp-demo-logs-") as tmp:
            write_day(tmp, day, lines=args.log_lines, files=2, gzip_files=True, seed=day.toordinal())
            lake.upload_tree(Path(tmp), raw)
        print(f"access logs      {folder} ({args.log_lines} lines)")

    # Air quality: generated station exports plus the real CPCB export (xlsx) of the
    # repository's sample data (include/sample_data); air_quality_land picks them up (and
    # lands them in the lake).
    from include.generators.air_quality import generate
    from include.platform.settings import load
    from include.sample_data import CPCB_BENGALURU_HOURLY

    incoming = Path(os.environ.get("DP_AIR_QUALITY_INCOMING") or load().air_quality_incoming)
    if not any(incoming.glob("*.csv")):
        generated = generate(incoming, rows=args.air_quality_rows, stations=4, seed=7)
        print(f"air quality      {incoming} ({args.air_quality_rows} rows, {len(generated.files)} stations)")
        import shutil

        real = CPCB_BENGALURU_HOURLY / "BWSSB.xlsx"
        shutil.copy2(real, incoming / real.name)
        print(f"                 + real CPCB export {real.name}")

    # Turnstiles: the real MTA week (include/sample_data), which turnstile_streaming replays into Kafka.
    from include.producers.turnstile import DEMO_DIR, SAMPLE_DIR

    if SAMPLE_DIR.is_dir() and not any(DEMO_DIR.glob("*.csv")):
        import shutil

        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        for week in sorted(SAMPLE_DIR.glob("*.csv")):
            shutil.copy2(week, DEMO_DIR / week.name)
        print(f"turnstiles       {DEMO_DIR} (the real week, replayed by turnstile_streaming)")
    return 0


def _stream_stop(args) -> int:
    """Ask the streaming jobs to stop gracefully (between micro-batches); with ``--wait``, return
    once each has stopped (its STOPPED marker), so its checkpoint is free for a run by hand."""
    import time

    from spark_apps.common.lake import join
    from spark_apps.streaming.supervision import STOP_MARKER, STOPPED_MARKER

    lake = _LakeFiles(stack.StackConfig())
    status = join(lake.uri, "streaming", "_status")
    jobs = args.jobs or lake.subfolders(status)
    for job in jobs:
        lake.touch(join(status, job, STOP_MARKER))
        print(f"stop requested: {job}")
    if not args.wait:
        return 0
    deadline = time.monotonic() + args.timeout
    waiting = list(jobs)
    while waiting and time.monotonic() < deadline:
        for job in [j for j in waiting if lake.exists(join(status, j, STOPPED_MARKER))]:
            waiting.remove(job)
            print(f"stopped: {job}")
        if waiting:
            time.sleep(1)
    if waiting:
        raise stack.StackError(f"not stopped after {args.timeout:.0f}s: {', '.join(waiting)} "
                               "(not running, or still in a micro-batch: see its Airflow task log)")
    return 0


def _run(args) -> int:
    cfg = stack.StackConfig()
    env = {**os.environ, **stack.read_env_file(cfg)}
    if not args.command:
        raise stack.StackError("nothing to run: give a command, e.g. `dp run airflow dags list`")
    os.execvpe(args.command[0], args.command, env)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the embedded stack")
    up.add_argument("--no-airflow", action="store_true", help="only databases, broker and moto")
    up.set_defaults(func=_up)
    sub.add_parser("down", help="stop the embedded stack").set_defaults(func=_down)
    sub.add_parser("status", help="show what runs").set_defaults(func=_status)
    sub.add_parser("build", help="build artifacts").set_defaults(func=_build)
    demo = sub.add_parser("demo-data", help="write generated demo input into the lake")
    demo.add_argument("--log-lines", type=int, default=200_000)
    demo.add_argument("--air-quality-rows", type=int, default=100_000)
    demo.set_defaults(func=_demo_data)
    stop = sub.add_parser("stream-stop", help="stop streaming jobs gracefully (pause metrics_streaming first)")
    stop.add_argument("jobs", nargs="*", help="job folders under streaming/_status (default: all)")
    stop.add_argument("--wait", action="store_true", help="return once every job has stopped")
    stop.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits at most")
    stop.set_defaults(func=_stream_stop)
    run = sub.add_parser("run", help="run a command with the stack's environment")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(func=_run)
    from include.platform import kafka_cli

    kafka_cli.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except stack.StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
