"""``dp``: the platform's command line.

    dp up        start the embedded stack (idempotent) and print the UI URL and login
    dp down      stop everything `dp up` started
    dp status    what runs
    dp demo-data write generated input for the demo DAGs into the lake
    dp build     compile Protobuf schemas and zip spark_apps/ for --py-files
    dp run CMD   run CMD with the stack's environment (e.g. `dp run airflow dags list`)
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


def _demo_data(args) -> int:
    """Generated input for the demo DAGs, in the lake's raw zone (never overwrites a day)."""
    from datetime import date, timedelta
    from pathlib import Path

    from include.generators.access_logs import write_day

    env = stack.read_env_file(stack.StackConfig())
    lake = Path(env.get("DP_LAKE_URI", stack.StackConfig().lake_dir.as_uri()).removeprefix("file://"))
    # The daily DAG's latest run (catchup off) analyses yesterday.
    day = date.today() - timedelta(days=1)
    folder = lake / "raw" / "access_logs" / f"date={day}"
    if not any(folder.glob("*.log*")):
        write_day(lake / "raw" / "access_logs", day, lines=args.log_lines, files=2, gzip_files=True, seed=day.toordinal())
        print(f"access logs      {folder} ({args.log_lines} lines)")

    # Air quality: generated station exports plus the real CPCB export (xlsx) when the
    # shared sample data is beside the repo; air_quality_land picks them up.
    from include.generators.air_quality import generate
    from include.platform.settings import REPO_ROOT, load

    incoming = Path(os.environ.get("DP_AIR_QUALITY_INCOMING") or load().air_quality_incoming)
    if not any(incoming.glob("*.csv")):
        generated = generate(incoming, rows=args.air_quality_rows, stations=4, seed=7)
        print(f"air quality      {incoming} ({args.air_quality_rows} rows, {len(generated.files)} stations)")
        real = REPO_ROOT.parent / "shared" / "data" / "cpcb_bengaluru_hourly" / "BWSSB.xlsx"
        if real.exists():
            import shutil

            shutil.copy2(real, incoming / real.name)
            print(f"                 + real CPCB export {real.name}")
    return 0


def _stream_stop(args) -> int:
    """Ask the streaming jobs to stop gracefully (between micro-batches)."""
    from pathlib import Path

    env = stack.read_env_file(stack.StackConfig())
    lake = env.get("DP_LAKE_URI", stack.StackConfig().lake_dir.as_uri()).removeprefix("file://")
    status = Path(lake) / "streaming" / "_status"
    jobs = args.jobs or (sorted(p.name for p in status.iterdir() if p.is_dir()) if status.exists() else [])
    for job in jobs:
        (status / job).mkdir(parents=True, exist_ok=True)
        (status / job / "STOP").touch()
        print(f"stop requested: {job}")
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
    stop.set_defaults(func=_stream_stop)
    run = sub.add_parser("run", help="run a command with the stack's environment")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(func=_run)
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
