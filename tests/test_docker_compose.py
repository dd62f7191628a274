"""Static checks of docker-compose.yaml and docker/: what can be verified without a Docker engine.

The compose file must be the embedded stack (include/platform/stack.py) in containers: the
same services, the same connection names and platform settings, pinned images, health
checks, and no secret written in the file.
"""
from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from include.platform import settings as platform_settings
from include.platform import stack

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / "docker" / "env.example"

AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
ONE_SHOT = {"airflow-init", "minio-init"}
EXPECTED_SERVICES = {
    *AIRFLOW_SERVICES, "airflow-init", "postgres", "mysql", "kafka", "cassandra", "spark-master", "spark-worker",
    "minio",
}
PROJECT_FOLDERS = ("dags", "spark_apps", "plugins", "include")
# What each service of the embedded stack is in docker-compose.
EMBEDDED_COUNTERPARTS = {
    "metadata DB (PostgreSQL/SQLite)": "postgres",
    "results DB (MariaDB)": "mysql",
    "kafka": "kafka",          # the embedded Apache Kafka broker (jvm/pom.xml kafka-broker jars)
    "cassandra": "cassandra",  # the embedded Apache Cassandra node (jvm/pom.xml cassandra jars)
    "moto": "minio",           # stack.moto_service: the S3 stand-in
    "websocket": "websocket",  # the platform's WebSocket source (include/platform/stack/websocket.py)
    "Spark (local[2])": "spark-master",
    **{name: name for name in stack.AIRFLOW_SERVICES},
}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|ACCESS_KEY|TOKEN|_PWD\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open() as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _interpolate(value: str, fill: str = "x") -> str:
    """The value with every ${VAR...} replaced: its default when it has one, else ``fill``."""
    def repl(match: re.Match) -> str:
        op, arg = match.group(2), match.group(3)
        return arg if op in (":-", "-") else fill
    return INTERPOLATION.sub(repl, value.replace("$$", "$"))


def _long_running(services: dict) -> dict:
    return {name: svc for name, svc in services.items() if name not in ONE_SHOT and svc.get("restart") != "no"}


def _embedded_stack_environment_keys() -> set[str]:
    """Keys of the dict literal in stack.stack_environment, read from the source.

    Calling the function is not an option here: it writes generated secrets under the
    home directory and runs `java -version` (find_java), so its keys are parsed instead.
    """
    # stack is a package: the function lives in one of its modules.
    sources = sorted(Path(stack.__file__).parent.glob("*.py")) if Path(stack.__file__).name == "__init__.py" \
        else [Path(stack.__file__)]
    func = next(n for src in sources for n in ast.walk(ast.parse(src.read_text()))
                if isinstance(n, ast.FunctionDef) and n.name == "stack_environment")
    keys: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setdefault"
                and node.args and isinstance(node.args[0], ast.Constant)):
            keys.add(node.args[0].value)
    # Only upper-case variable names (not the keys of the nested aws_extra dict).
    return {k for k in keys if re.fullmatch(r"[A-Z][A-Z0-9_]*", k)}


# ---------------------------------------------------------------------------------- structure


def test_yaml_parses_and_has_the_platform_services(services):
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


def test_every_embedded_stack_service_has_a_counterpart(services, tmp_path):
    # stack.status() names every process the embedded stack runs; with an empty home it
    # only looks for pid files there (no process is started, nothing is written).
    embedded = set(stack.status(stack.StackConfig(home=tmp_path)))
    assert embedded == {"kafka", "cassandra", "moto", "websocket", *stack.AIRFLOW_SERVICES}
    assert embedded <= set(EMBEDDED_COUNTERPARTS), f"no counterpart declared for {embedded - set(EMBEDDED_COUNTERPARTS)}"
    assert set(stack.AIRFLOW_SERVICES) == set(AIRFLOW_SERVICES)
    for embedded_name, service in EMBEDDED_COUNTERPARTS.items():
        assert service in services, f"{embedded_name}: no '{service}' service in docker-compose.yaml"
    assert "spark-worker" in services


def test_long_running_services_have_healthchecks(services):
    long_running = _long_running(services)
    assert set(long_running) >= EXPECTED_SERVICES - {"airflow-init"}
    for name, svc in long_running.items():
        check = svc.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_images_are_pinned(services):
    for name, svc in services.items():
        image = svc.get("image")
        assert image, f"{name} has no image (built services need a pinned image name too)"
        ref = image.split("@", 1)[0]
        last = ref.rsplit("/", 1)[-1]
        assert ":" in last, f"{name}: image {image} has no tag"
        tag = last.split(":", 1)[1]
        assert tag and tag != "latest" and "$" not in tag, f"{name}: image {image} is not pinned"


def _dockerfile_images(path: Path) -> list[str]:
    text = path.read_text()
    args = dict(re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)", text, re.MULTILINE))
    stages = {m.lower() for m in re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.MULTILINE | re.IGNORECASE)}
    refs = re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", text, re.MULTILINE)
    refs += re.findall(r"COPY\s+(?:--\S+\s+)*--from=(\S+)", text)
    images = []
    for ref in refs:
        ref = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), ref)
        if ref.lower() in stages:
            continue
        images.append(ref)
    return images


def _copy_sources(dockerfile: Path) -> list[str]:
    """Build-context sources of every COPY without --from (several sources per line allowed)."""
    sources = []
    for line in re.findall(r"^COPY\s+(.+)$", dockerfile.read_text(), re.MULTILINE):
        words = line.split()
        if any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources += paths[:-1]
    return sources


def _dockerignored(dockerfile: Path, path: str) -> bool:
    """Whether ``<dockerfile>.dockerignore`` keeps ``path`` out of the build context: the
    last pattern matching the path or one of its parent folders decides, ``!`` re-includes."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not ignore.is_file():
        return False
    parts = path.rstrip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in ignore.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_check_reads_exceptions(tmp_path):
    dockerfile = tmp_path / "x.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    (tmp_path / "x.Dockerfile.dockerignore").write_text("*\n!requirements.lock\n!docker/spark/\n!jvm/pom.xml\n")
    assert not _dockerignored(dockerfile, "requirements.lock")
    assert not _dockerignored(dockerfile, "docker/spark/spark-defaults.conf")
    assert not _dockerignored(dockerfile, "jvm/pom.xml")
    assert _dockerignored(dockerfile, "jvm/jars.sha256")
    assert _dockerignored(dockerfile, "include/platform/jvm.py")


def test_built_images_reference_existing_dockerfiles_with_pinned_bases(services):
    built = {name: svc for name, svc in services.items() if svc.get("build")}
    assert {"airflow-api-server", "spark-master"} <= set(built)
    for name, svc in built.items():
        build = svc["build"]
        context = ROOT / build.get("context", ".")
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        images = _dockerfile_images(dockerfile)
        assert images, f"{dockerfile} has no FROM"
        for image in images:
            last = image.rsplit("/", 1)[-1]
            assert ":" in last and not last.endswith(":latest") and "$" not in image, (
                f"{dockerfile.name}: base image {image} is not pinned"
            )
        # Files the Dockerfile copies from the build context exist and are in the context
        # its .dockerignore leaves.
        for src in _copy_sources(dockerfile):
            assert (context / src).exists(), f"{dockerfile.name}: COPY source {src} does not exist"
            assert not _dockerignored(dockerfile, src), f"{dockerfile.name}: COPY source {src} is excluded by its .dockerignore"


def test_airflow_image_matches_the_lock():
    text = (ROOT / "docker" / "airflow.Dockerfile").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    airflow = re.search(r"^apache-airflow==(\S+)", lock, re.MULTILINE).group(1)
    pyspark = re.search(r"^pyspark==(\S+)", lock, re.MULTILINE).group(1)
    assert f"FROM apache/airflow:{airflow}-python3.11" in text
    assert "requirements.lock" in text
    # The pyspark reinstall of scripts/install.sh, and a Java for spark-submit.
    assert re.search(r"grep -E '\^pyspark=='", text) and "--force-reinstall --no-deps" in text
    assert "JAVA_HOME" in text
    for dockerfile in ("airflow.Dockerfile", "spark.Dockerfile"):
        content = (ROOT / "docker" / dockerfile).read_text()
        assert f"apache/spark:{pyspark}-" in content, f"{dockerfile}: Spark image is not the lock's pyspark {pyspark}"


# ---------------------------------------------------------------------------------- JVM jars: one manifest


def _pom_properties() -> dict[str, str]:
    root = ET.parse(ROOT / "jvm" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in root.find("m:properties", ns)}


def test_compose_kafka_is_the_poms_kafka_release(services):
    kafka_version = _pom_properties()["kafka.version"]
    image = services["kafka"]["image"]
    assert image == f"apache/kafka:{kafka_version}", f"compose runs {image}, jvm/pom.xml pins Kafka {kafka_version}"


def test_compose_cassandra_is_the_poms_cassandra_release(services):
    version = _pom_properties()["cassandra.version"]
    image = services["cassandra"]["image"]
    assert image == f"cassandra:{version}", f"compose runs {image}, jvm/pom.xml pins Cassandra {version}"


MAVEN_SPARK_GROUP = re.compile(
    r"mvn\b[^\n]*?\s-f\s+jvm/pom\.xml\s+-P\s+spark\s+dependency:copy-dependencies\s*\\?\s*"
    r"-DoutputDirectory=(?P<out>\S+)\s+-DincludeScope=runtime"
)


@pytest.mark.parametrize("dockerfile", ["spark.Dockerfile", "airflow.Dockerfile"])
def test_images_take_the_connector_jars_from_jvm_pom(dockerfile):
    """Both images resolve the `spark` group of jvm/pom.xml with Maven at build time and
    refuse jars that differ from jvm/jars.sha256; no Ivy/--packages resolution is left."""
    path = ROOT / "docker" / dockerfile
    text = path.read_text()
    stage = re.search(r"^FROM\s+(\S+)\s+AS\s+connector-jars$", text, re.MULTILINE)
    assert stage, f"{dockerfile}: no connector-jars stage"
    assert "maven:" in next(i for i in _dockerfile_images(path) if "maven" in i)
    assert re.search(r"^COPY\s+jvm/pom\.xml\s+jvm/jars\.sha256\s+jvm/$", text, re.MULTILINE), text
    build = MAVEN_SPARK_GROUP.search(text)
    assert build, f"{dockerfile}: the connector-jars stage does not run Maven on jvm/pom.xml -P spark"
    assert "--strict-checksums" in text
    out = build["out"]
    # every resolved jar is checked against its pin, and nothing unpinned slips through
    assert re.search(r"""awk '\$1 == "spark" \{ print \$3 "  " \$2 \}' jvm/jars\.sha256""", text)
    assert f"cd {out} && sha256sum --strict --quiet -c" in text
    assert "diff -u /tmp/pinned /tmp/resolved" in text
    assert re.search(rf"^COPY\s+--from=connector-jars\s+(?:--\S+\s+)*{re.escape(out)}/\s", text, re.MULTILINE)
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "fetch-jars" not in code and "ivy" not in code.lower() and "--packages" not in code
    for src in ("jvm/pom.xml", "jvm/jars.sha256"):
        assert not _dockerignored(path, src), f"{dockerfile}.dockerignore excludes {src}"


def test_both_images_run_the_same_connector_jars_stage():
    def stage(name: str) -> list[str]:
        text = (ROOT / "docker" / name).read_text()
        start = text.index("AS connector-jars")
        lines = text[start: text.index("\nFROM ", start)].splitlines()
        return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]

    assert stage("spark.Dockerfile") == stage("airflow.Dockerfile")
    assert not (ROOT / "docker" / "spark" / "fetch-jars.sh").exists()


def test_airflow_image_serves_the_jars_to_jvm_py_and_the_driver():
    """`dp build` in airflow-init copies the spark group into build/jars/ (the EMR artifact):
    jvm.py finds it in DP_JARS_DIR, installed by jvm.py from the verified stage output; the
    client-mode driver gets the same jars on its classpath (pyspark/jars)."""
    text = (ROOT / "docker" / "airflow.Dockerfile").read_text()
    jars_dir = re.search(r"^ENV DP_JARS_DIR=(\S+)$", text, re.MULTILINE).group(1)
    assert "python -m include.platform.jvm install --group spark --from /tmp/connector-jars" in text
    assert 'cp "$DP_JARS_DIR"/spark/*.jar "$jars"/' in text
    assert jars_dir.startswith("/opt/dataplatform/")  # created writable for the airflow user above
    for src in ("include/platform/jvm.py", "include/platform/settings.py"):
        assert src in _copy_sources(ROOT / "docker" / "airflow.Dockerfile")
    # The two copied modules need nothing else: the standard library, and jvm.py settings.REPO_ROOT.
    for module, allowed in (("jvm.py", {"include.platform.settings"}), ("settings.py", set())):
        tree = ast.parse((ROOT / "include" / "platform" / module).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__"}
        assert outside <= allowed, f"include/platform/{module} imports {sorted(outside - allowed)}: copy them in the image too"


def test_referenced_files_exist(services):
    for name, svc in services.items():
        for volume in svc.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: mounted path {source} does not exist"
    init_scripts = list((ROOT / "docker" / "mysql" / "initdb").iterdir())
    assert init_scripts, "no MySQL init script"
    assert (ROOT / "docker" / "minio" / "init.sh").is_file()
    assert ENV_EXAMPLE.is_file()


def test_project_folders_mounted_in_every_airflow_service(services):
    airflow = [name for name in services if name.startswith("airflow-")]
    assert set(airflow) == {*AIRFLOW_SERVICES, "airflow-init"}
    for name in airflow:
        targets = {}
        for volume in services[name].get("volumes") or []:
            source, target = volume.split(":")[:2]
            targets[source] = target
        for folder in PROJECT_FOLDERS:
            assert targets.get(f"./{folder}") == f"/opt/airflow/{folder}", f"{name} does not mount ./{folder}"


def test_dependencies_wait_for_health(services):
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    scheduler = services["airflow-scheduler"]["depends_on"]
    for dep in ("mysql", "kafka", "spark-master"):
        assert scheduler[dep]["condition"] == "service_healthy", f"scheduler must wait for a healthy {dep}"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["spark-worker"]["depends_on"]["spark-master"]["condition"] == "service_healthy"
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_airflow_init_migrates_the_db(services):
    command = services["airflow-init"]["command"]
    assert "airflow db migrate" in " ".join(command if isinstance(command, list) else [command])


# ---------------------------------------------------------------------------------- configuration


def test_connection_names_match_the_embedded_stack(services):
    embedded = {k for k in _embedded_stack_environment_keys() if k.startswith("AIRFLOW_CONN_")}
    assert embedded >= {
        "AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_SPARK_DEFAULT", "AIRFLOW_CONN_KAFKA_DEFAULT", "AIRFLOW_CONN_MYSQL_RESULTS",
    }
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        compose_conns = {k for k in _env(services[name]) if k.startswith("AIRFLOW_CONN_")}
        assert compose_conns == embedded, f"{name}: connections differ from the embedded stack"


def test_connections_are_json_pointing_at_the_containers(services):
    env = _env(services["airflow-scheduler"])
    conns = {k: json.loads(_interpolate(v)) for k, v in env.items() if k.startswith("AIRFLOW_CONN_")}
    aws = conns["AIRFLOW_CONN_AWS_DEFAULT"]
    assert aws["conn_type"] == "aws" and aws["extra"]["endpoint_url"] == "http://minio:9000"
    for name in ("AIRFLOW_CONN_SPARK_DEFAULT", "AIRFLOW_CONN_SPARK_STREAMING"):
        spark = conns[name]
        assert spark["conn_type"] == "spark" and f"{spark['host']}:{spark['port']}" == "spark://spark-master:7077"
    assert conns["AIRFLOW_CONN_KAFKA_DEFAULT"]["extra"]["bootstrap.servers"] == "kafka:9092"
    mysql = conns["AIRFLOW_CONN_MYSQL_RESULTS"]
    assert (mysql["conn_type"], mysql["host"], mysql["schema"]) == ("mysql", "mysql", "dataplatform")
    assert mysql["login"] != "root"
    raw_password = json.loads(env["AIRFLOW_CONN_MYSQL_RESULTS"])["password"]
    assert INTERPOLATION.fullmatch(raw_password) and INTERPOLATION.fullmatch(raw_password).group(2) == ":?"


def test_airflow_environment_covers_the_embedded_stack(services):
    # Host-specific variables of the embedded stack that have no meaning in a container.
    host_only = {"DP_HOME", "PATH"}
    expected = _embedded_stack_environment_keys() - host_only
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        missing = expected - set(_env(services[name]))
        assert not missing, f"{name} lacks variables the embedded stack sets: {sorted(missing)}"


def test_platform_settings_in_docker(services, monkeypatch):
    env = _env(services["airflow-scheduler"])
    for key in list(os.environ):
        if key.startswith("DP_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, _interpolate(value))
    cfg = platform_settings.load()
    assert cfg.runner == "local"
    assert cfg.lake_uri == "s3a://dataplatform-lake/lake"
    assert (cfg.lake_bucket, cfg.artifacts_bucket) == ("dataplatform-lake", "dataplatform-artifacts")
    assert (cfg.aws_conn_id, cfg.spark_conn_id, cfg.kafka_conn_id, cfg.mysql_conn_id) == (
        "aws_default", "spark_default", "kafka_default", "mysql_results",
    )
    assert cfg.spark_streaming_conn_id == "spark_streaming"
    assert cfg.spark_apps_uri == "file:///opt/airflow/build"
    # The native `kafka` format (spark-sql-kafka in both images) is the only one: no switch.
    assert "DP_KAFKA_SPARK_FORMAT" not in env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/auth/")
    # The passwords file lives in a volume, so it survives container re-creation.
    api_targets = [v.split(":")[1] for v in services["airflow-api-server"]["volumes"]]
    assert "/opt/airflow/auth" in api_targets
    buckets_script = (ROOT / "docker" / "minio" / "init.sh").read_text()
    assert "dataplatform-lake" in buckets_script and "dataplatform-artifacts" in buckets_script
    assert "mc mb" in buckets_script


def test_mysql_init_creates_least_privilege_user():
    script = next((ROOT / "docker" / "mysql" / "initdb").iterdir()).read_text()
    assert "CREATE DATABASE IF NOT EXISTS" in script and "dataplatform" in script
    grant = re.search(r"GRANT (.+?) ON", script).group(1)
    assert "ALL" not in grant.upper() and "GRANT OPTION" not in script.upper()
    assert "MYSQL_RESULTS_PASSWORD" in script


# ---------------------------------------------------------------------------------- secrets


def _walk(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


def test_no_plaintext_secrets(compose):
    for path, value in _walk(compose):
        key = path.rsplit(".", 1)[-1]
        if SECRET_NAME.search(key) and not key.endswith("_FILE") and isinstance(value, str):
            assert INTERPOLATION.fullmatch(value), f"{path}: secret value must come from .env as ${{VAR:?...}}"
            assert INTERPOLATION.fullmatch(value).group(2) == ":?", f"{path}: required secret needs ${{VAR:?message}}"
    text = COMPOSE_FILE.read_text()
    # Passwords inside URLs or JSON strings are interpolated too.
    for url_password in re.findall(r"://[^:/\s]+:([^@\s]+)@", text):
        assert INTERPOLATION.fullmatch(url_password), f"password in a URL is not from .env: {url_password}"
    for json_password in re.findall(r'"password":\s*"([^"]*)"', text):
        assert INTERPOLATION.fullmatch(json_password), "password in a connection JSON is not from .env"
    for secret_var in ("POSTGRES_PASSWORD", "MYSQL_ROOT_PASSWORD", "MYSQL_RESULTS_PASSWORD", "MINIO_ROOT_PASSWORD",
                       "DP_S3_SECRET_KEY", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"):
        uses = re.findall(r"\$\{" + secret_var + r"(:?[-?])?", text)
        assert uses, f"{secret_var} unused"
        assert all(op == ":?" for op in uses), f"{secret_var} must be required (${{{secret_var}:?...}}), never defaulted"


def test_env_example_lists_every_variable_without_values(compose):
    text = COMPOSE_FILE.read_text()
    used = {m.group(1) for m in INTERPOLATION.finditer(text.replace("$$", ""))}  # $$: container-side variable
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    assert used <= set(example), f"docker/env.example lacks {sorted(used - set(example))}"
    for key, value in example.items():
        if SECRET_NAME.search(key):
            assert value == "", f"docker/env.example must not ship a value for {key}"


# ---------------------------------------------------------------------------------- docker compose


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _compose_config(cli: list[str], compose_file: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`compose config --quiet` of ``compose_file`` with every variable of docker/env.example set."""
    env_file = tmp_path / "test.env"
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            lines.append(f"{key}={value or 'test-value-0123456789'}")
    env_file.write_text("\n".join(lines) + "\n")
    return subprocess.run(
        [*cli, "--env-file", str(env_file), "-f", str(compose_file), "--project-directory", str(ROOT), "config", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    cli = _compose_cli()
    assert cli, "no Compose CLI: `make deps` (scripts/install.sh) installs Debian's docker-compose when the plugin is missing"
    return cli


def test_docker_compose_config_validates(compose_cli, tmp_path):
    result = _compose_config(compose_cli, COMPOSE_FILE, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_validation_rejects_a_broken_file(compose_cli, tmp_path):
    """The check above is a real one: an unknown key and an invalid dependency condition fail it."""
    broken = COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: service_wobbly", 1)
    broken = broken.replace("    healthcheck:", "    healthchek:", 1)
    (tmp_path / "docker-compose.yaml").write_text(broken)
    result = _compose_config(compose_cli, tmp_path / "docker-compose.yaml", tmp_path)
    assert result.returncode != 0
    assert "healthchek" in result.stderr and "service_wobbly" in result.stderr


# ---------------------------------------------------------------------------------- faults a run would show


def _spark_defaults() -> dict[str, str]:
    lines = (ROOT / "docker" / "spark" / "spark-defaults.conf").read_text().splitlines()
    return dict(line.split(None, 1) for line in lines if line.strip() and not line.startswith("#"))


def test_applications_are_capped(services):
    """Without spark.cores.max the first application takes every core: the streaming jobs (which
    never end) could not run together, nor a batch job beside them. The worker's size against
    the DAGs' streaming jobs: tests/dags/test_dag_integrity.py."""
    conf = _spark_defaults()
    assert int(conf["spark.cores.max"]) == int(conf["spark.executor.cores"]) == 1
    command = [_interpolate(str(part)) for part in services["spark-worker"]["command"]]
    assert "--cores" in command and "--memory" in command


def test_scheduler_waits_for_the_api_server(services):
    """LocalExecutor's tasks call the Execution API: the scheduler starts after a healthy api-server."""
    assert services["airflow-scheduler"]["depends_on"]["airflow-api-server"]["condition"] == "service_healthy"


def test_no_setting_airflow_3_3_dropped(compose):
    assert "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR" not in compose["x-airflow-env"]


def test_airflow_init_builds_outside_the_bind_mounted_sources(services):
    """protoc writes metric_pb2.py beside its .proto: in the bind-mounted ./spark_apps that is a
    file of uid 50000 in the host's tree, or a permission error that blocks every service."""
    command = services["airflow-init"]["command"]
    script = command[-1] if isinstance(command, list) else command
    assert "src=$$(mktemp -d)" in script
    assert '(cd "$$src" && PYTHONPATH="$$src" python -m include.platform.cli build)' in script
    assert 'cp -r "$$src"/build/. /opt/airflow/build/' in script
    volumes = {v.split(":")[0]: v.split(":")[1] for v in services["airflow-init"]["volumes"]}
    assert volumes["spark-apps-build"] == "/opt/airflow/build"
    # what `dp build` reads besides the code: the jar pins and the lock (EMR bootstrap pins)
    assert volumes["./jvm"] == "/opt/airflow/jvm" and volumes["./requirements.lock"] == "/opt/airflow/requirements.lock"


def test_minio_init_needs_no_grep():
    """The mc image (ubi-micro) may have no grep: a second `up` must not depend on it."""
    script = (ROOT / "docker" / "minio" / "init.sh").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    for tool in ("grep", "sed", "awk"):
        assert not re.search(rf"\b{tool}\b", code), f"docker/minio/init.sh uses {tool}"


def test_airflow_image_installs_the_runtime_dependencies_only():
    text = (ROOT / "docker" / "airflow.Dockerfile").read_text()
    assert "-r /tmp/requirements.lock" not in text, "the lock holds the dev tools (pytest, ruff, moto)"
    assert "-c /tmp/requirements.lock" in text and "['project']['dependencies']" in text
    assert "not d.startswith('moto')" in text


def test_spark_image_has_cryptography_for_mysql_8():
    text = (ROOT / "docker" / "spark.Dockerfile").read_text()
    install = re.search(r"uv pip install[^\n]*\n([^\n]*)", text).group(1).split()
    assert "cryptography" in install and "pymysql" in install
