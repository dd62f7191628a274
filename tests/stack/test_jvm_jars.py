"""The platform's JVM jars (include/platform/jvm.py, jvm/pom.xml, jvm/jars.sha256).

Two kinds of tests:

* unit tests of jvm.py on temporary folders and lock files: no Maven, no network;
* guards on the resolved ``spark`` group (``make deps`` resolves it before tests run): no
  jar may duplicate or contradict what pyspark ships in ``pyspark/jars``, neither class by
  class nor as a Maven artifact; Spark's own modules have pyspark's version and Scala
  binary, hadoop-aws has the version of pyspark's hadoop-client-api; the folder holds
  exactly the pinned jars. A failure here means: add an ``<exclusion>`` to jvm/pom.xml (or
  fix a version there), then ``make jars-lock`` and ``make deps``.
"""
from __future__ import annotations

import re
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from include.platform import jvm

ROOT = Path(__file__).resolve().parents[2]
# Entries that are legitimately in many jars and never conflict.
IGNORED_CLASS_FILES = {"module-info.class", "package-info.class"}
# Every Spark module shades the same empty stub from org.spark-project.spark:unused
# (Spark's build does it to make the shade plugin run); pyspark's own spark-* jars carry
# it too, so it is not a conflict.
SPARK_UNUSED_STUB = "org/apache/spark/unused/UnusedStubClass.class"
# artifactId-version[-classifier].jar, as Maven's copy-dependencies names files; the
# version is the first "-<digits>.<digits>" part.
JAR_NAME = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d+(?:\.\d+)+.*?)\.jar$")


# ---------------------------------------------------------------------------------- helpers


def _classes(jar: Path) -> set[str]:
    """The class files of a jar that can clash: no module/package descriptors, nothing
    under META-INF (multi-release ``META-INF/versions/N/...`` entries are alternatives of
    the same jar's own classes)."""
    with zipfile.ZipFile(jar) as zf:
        return {
            name for name in zf.namelist()
            if name.endswith(".class") and not name.startswith("META-INF/")
            and name.rsplit("/", 1)[-1] not in IGNORED_CLASS_FILES and name != SPARK_UNUSED_STUB
        }


def _coordinates(jar: Path) -> tuple[str | None, str, str]:
    """(groupId or None, artifactId, version) of a jar: from the pom.properties describing
    the jar itself (jars with shaded dependencies carry those of the shaded ones too), else
    from the file name."""
    with zipfile.ZipFile(jar) as zf:
        for name in zf.namelist():
            if not (name.startswith("META-INF/maven/") and name.endswith("/pom.properties")):
                continue
            props = dict(
                line.split("=", 1) for line in zf.read(name).decode("utf-8", "replace").splitlines()
                if "=" in line and not line.startswith("#")
            )
            artifact, version = props.get("artifactId", "").strip(), props.get("version", "").strip()
            if artifact and version and jar.name.startswith(f"{artifact}-{version}"):
                return props.get("groupId", "").strip() or None, artifact, version
    match = JAR_NAME.match(jar.name)
    assert match, f"cannot read artifact and version from the jar name {jar.name}"
    return None, match["artifact"], match["version"]


def class_overlaps(jars: list[Path], reference: list[Path]) -> dict[tuple[str, str], list[str]]:
    """{(jar, other jar): classes both define}, for every jar against the reference jars
    and against the other jars of ``jars``."""
    owner: dict[str, str] = {}
    for ref in reference:
        for cls in _classes(ref):
            owner.setdefault(cls, f"pyspark/jars/{ref.name}")
    overlaps: dict[tuple[str, str], list[str]] = defaultdict(list)
    for jar in jars:
        for cls in sorted(_classes(jar)):
            if cls in owner:
                overlaps[(jar.name, owner[cls])].append(cls)
            else:
                owner[cls] = jar.name
    return dict(overlaps)


def artifact_conflicts(jars: list[Path], reference: list[Path]) -> list[str]:
    """One line per jar whose artifact (same artifactId, and same groupId when both are
    known) is also a reference jar, in the same or in another version."""
    by_artifact: dict[str, list[tuple[str | None, str, str]]] = defaultdict(list)
    for ref in reference:
        group, artifact, version = _coordinates(ref)
        by_artifact[artifact].append((group, version, ref.name))
    conflicts = []
    for jar in jars:
        group, artifact, version = _coordinates(jar)
        for ref_group, ref_version, ref_name in by_artifact.get(artifact, []):
            if group and ref_group and group != ref_group:
                continue
            kind = "duplicates" if version == ref_version else "contradicts"
            conflicts.append(f"{jar.name} ({group or '?'}:{artifact}:{version}) {kind} pyspark/jars/{ref_name}")
    return conflicts


def _pyspark_jars() -> list[Path]:
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    assert jars, "pyspark/jars is empty: the full pyspark package is not installed"
    return jars


def _make_jar(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _pom_properties(group: str, artifact: str, version: str) -> tuple[str, bytes]:
    return (f"META-INF/maven/{group}/{artifact}/pom.properties",
            f"groupId={group}\nartifactId={artifact}\nversion={version}\n".encode())


# ---------------------------------------------------------------------------------- the guards themselves


def test_class_overlap_guard_finds_duplicates_and_ignores_descriptors(tmp_path):
    ref = _make_jar(tmp_path / "ref-1.0.jar", {
        "a/A.class": b"1", "module-info.class": b"m", "a/package-info.class": b"p", SPARK_UNUSED_STUB: b"s",
    })
    clean = _make_jar(tmp_path / "clean-1.0.jar", {
        "b/B.class": b"2", "module-info.class": b"m", "a/package-info.class": b"p", SPARK_UNUSED_STUB: b"s",
        "META-INF/versions/11/a/A.class": b"mr",
    })
    assert class_overlaps([clean], [ref]) == {}
    dup = _make_jar(tmp_path / "dup-2.0.jar", {"a/A.class": b"other"})
    twice = _make_jar(tmp_path / "twice-1.0.jar", {"b/B.class": b"again"})
    assert class_overlaps([clean, dup, twice], [ref]) == {
        ("dup-2.0.jar", "pyspark/jars/ref-1.0.jar"): ["a/A.class"],
        ("twice-1.0.jar", "clean-1.0.jar"): ["b/B.class"],
    }


def test_artifact_guard_compares_artifact_ids_and_groups(tmp_path):
    ref = [
        _make_jar(tmp_path / "commons-pool-1.5.4.jar", dict([_pom_properties("commons-pool", "commons-pool", "1.5.4")])),
        _make_jar(tmp_path / "annotations-17.0.0.jar", dict([_pom_properties("org.jetbrains", "annotations", "17.0.0")])),
        _make_jar(tmp_path / "zstd-jni-1.5.7-7.jar", {}),  # no pom.properties: from the name
    ]
    ours = tmp_path / "ours"
    ours.mkdir()
    fine = [
        _make_jar(ours / "commons-pool2-2.13.1.jar", dict([_pom_properties("org.apache.commons", "commons-pool2", "2.13.1")])),
        # same artifactId, other group: not the same artifact
        _make_jar(ours / "annotations-2.35.4.jar", dict([_pom_properties("software.amazon.awssdk", "annotations", "2.35.4")])),
    ]
    assert artifact_conflicts(fine, ref) == []
    clash = [
        _make_jar(ours / "zstd-jni-1.5.6-10.jar", {}),
        _make_jar(ours / "commons-pool-1.5.4.jar", dict([_pom_properties("commons-pool", "commons-pool", "1.5.4")])),
    ]
    assert artifact_conflicts(clash, ref) == [
        "zstd-jni-1.5.6-10.jar (?:zstd-jni:1.5.6-10) contradicts pyspark/jars/zstd-jni-1.5.7-7.jar",
        "commons-pool-1.5.4.jar (commons-pool:commons-pool:1.5.4) duplicates pyspark/jars/commons-pool-1.5.4.jar",
    ]


def test_jar_names_parse_like_maven_writes_them(tmp_path):
    cases = {
        "spark-sql-kafka-0-10_2.13-4.2.0.jar": ("spark-sql-kafka-0-10_2.13", "4.2.0"),
        "hadoop-client-api-3.5.0.jar": ("hadoop-client-api", "3.5.0"),
        "guava-33.6.0-jre.jar": ("guava", "33.6.0-jre"),
        "kafka-clients-3.9.2.jar": ("kafka-clients", "3.9.2"),
    }
    for name, expected in cases.items():
        assert _coordinates(_make_jar(tmp_path / name, {}))[1:] == expected


# ---------------------------------------------------------------------------------- jvm.py without Maven


LOCK_TEXT = """\
# a comment
spark  a-1.0.jar  aaaa

kafka-broker  b-2.0.jar  bbbb
spark  c-3.0.jar  cccc
"""


def test_read_lock_parses_groups_and_skips_comments(tmp_path):
    lock = tmp_path / "jars.sha256"
    lock.write_text(LOCK_TEXT)
    pins = jvm.read_lock(lock)
    assert pins["spark"] == {"a-1.0.jar": "aaaa", "c-3.0.jar": "cccc"}
    assert pins["kafka-broker"] == {"b-2.0.jar": "bbbb"}
    assert all(pins[group] == {} for group in jvm.GROUPS if group not in ("spark", "kafka-broker"))
    assert jvm.read_lock(tmp_path / "absent") == {group: {} for group in jvm.GROUPS}
    assert jvm.pinned_jar_names("spark", lock) == ["a-1.0.jar", "c-3.0.jar"]
    empty = tmp_path / "empty.sha256"
    empty.write_text("# nothing pinned\n")
    with pytest.raises(jvm.JarsError, match="pins no jar of group 'spark'"):
        jvm.pinned_jar_names("spark", empty)
    with pytest.raises(ValueError, match="unknown jar group"):
        jvm.pinned_jar_names("nope", lock)


def test_checked_in_lock_pins_the_connectors():
    names = jvm.pinned_jar_names("spark")
    assert names == sorted(jvm.read_lock()["spark"])
    for required in ("spark-sql-kafka-0-10_2.13-", "spark-token-provider-kafka-0-10_2.13-", "spark-avro_2.13-",
                     "hadoop-aws-", "kafka-clients-"):
        assert any(n.startswith(required) for n in names), f"jvm/jars.sha256 pins no {required}*.jar"
    for group, pins in jvm.read_lock().items():
        for name, digest in pins.items():
            assert name.endswith(".jar") and re.fullmatch(r"[0-9a-f]{64}", digest), f"{group} {name}: bad pin"


def _folder_with_pins(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "spark"
    folder.mkdir()
    pins = {}
    for name, data in (("a-1.0.jar", b"first"), ("b-2.0.jar", b"second")):
        (folder / name).write_bytes(data)
        pins[name] = jvm._sha256(folder / name)
    return folder, pins


def test_verify_accepts_exactly_the_pinned_jars(tmp_path):
    folder, pins = _folder_with_pins(tmp_path)
    (folder / jvm.STAMP).write_text("whatever\n")  # not a jar: ignored
    jvm.verify("spark", folder, pins)


@pytest.mark.parametrize("change, message", [
    ("changed", "does not match its checksum"),
    ("missing", r"missing \['b-2.0.jar'\]"),
    ("extra", r"unexpected \['x-9.9.jar'\]"),
])
def test_verify_rejects_a_changed_missing_or_extra_jar(tmp_path, change, message):
    folder, pins = _folder_with_pins(tmp_path)
    if change == "changed":
        (folder / "a-1.0.jar").write_bytes(b"tampered")
    elif change == "missing":
        (folder / "b-2.0.jar").unlink()
    else:
        (folder / "x-9.9.jar").write_bytes(b"extra")
    with pytest.raises(jvm.JarsError, match=message) as err:
        jvm.verify("spark", folder, pins)
    assert "\n" not in str(err.value)


def test_classpath_needs_resolved_jars(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_JARS_DIR", str(tmp_path / "jars"))
    assert jvm.group_dir("spark") == tmp_path / "jars" / "spark"
    with pytest.raises(jvm.JarsError, match=r"the 'spark' JVM jars are not in .*: run `make deps`") as err:
        jvm.classpath("spark")
    assert "\n" not in str(err.value)
    # jars without the stamp (an interrupted copy, a hand-filled folder) are not served either
    folder = tmp_path / "jars" / "spark"
    folder.mkdir(parents=True)
    (folder / "a-1.0.jar").write_bytes(b"x")
    with pytest.raises(jvm.JarsError, match="make deps"):
        jvm.spark_jars()
    (folder / jvm.STAMP).write_text("spark stamp\n")
    (folder / "b-1.0.jar").write_bytes(b"y")
    assert jvm.classpath("spark") == [folder / "a-1.0.jar", folder / "b-1.0.jar"]
    assert jvm.spark_jars() == f"{folder / 'a-1.0.jar'},{folder / 'b-1.0.jar'}"
    with pytest.raises(ValueError, match="unknown jar group"):
        jvm.group_dir("spark-extra")


def test_resolve_does_not_start_maven_when_the_stamp_matches(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_JARS_DIR", str(tmp_path))
    folder, pins = _folder_with_pins(tmp_path)
    monkeypatch.setattr(jvm, "read_lock", lambda lock=None: {"spark": pins})
    (folder / jvm.STAMP).write_text(jvm._manifest_stamp("spark", pins) + "\n")

    def no_maven(group, out):
        raise AssertionError("Maven started although nothing changed")

    monkeypatch.setattr(jvm, "_maven", no_maven)
    jvm.resolve(("spark",), echo=lambda _: None)

    # A stale stamp (pom or pins changed): Maven runs, and its output must verify.
    (folder / jvm.STAMP).write_text("spark old\n")

    def fake_maven(group, out):
        out.mkdir(parents=True)
        (out / "a-1.0.jar").write_bytes(b"first")
        (out / "b-2.0.jar").write_bytes(b"second")

    monkeypatch.setattr(jvm, "_maven", fake_maven)
    jvm.resolve(("spark",), echo=lambda _: None)
    assert (folder / jvm.STAMP).read_text().strip() == jvm._manifest_stamp("spark", pins)

    def wrong_maven(group, out):
        fake_maven(group, out)
        (out / "b-2.0.jar").write_bytes(b"other bytes")

    (folder / jvm.STAMP).write_text("spark old\n")
    monkeypatch.setattr(jvm, "_maven", wrong_maven)
    with pytest.raises(jvm.JarsError, match="does not match its checksum"):
        jvm.resolve(("spark",), echo=lambda _: None)
    # the previous folder is left as it was
    assert (folder / "b-2.0.jar").read_bytes() == b"second"


def test_install_serves_verified_jars_only(tmp_path, monkeypatch):
    """What the Airflow image does with the output of its Maven build stage."""
    (tmp_path / "from-maven").mkdir()
    source, pins = _folder_with_pins(tmp_path / "from-maven")
    monkeypatch.setenv("DP_JARS_DIR", str(tmp_path / "jars"))
    monkeypatch.setattr(jvm, "read_lock", lambda lock=None: {"spark": pins})
    target = jvm.install("spark", source, echo=lambda _: None)
    assert target == tmp_path / "jars" / "spark"
    assert [p.name for p in jvm.classpath("spark")] == ["a-1.0.jar", "b-2.0.jar"]
    assert (target / jvm.STAMP).read_text().strip() == jvm._manifest_stamp("spark", pins)
    (source / "a-1.0.jar").write_bytes(b"tampered")
    with pytest.raises(jvm.JarsError, match="does not match its checksum"):
        jvm.install("spark", source, echo=lambda _: None)
    assert (target / "a-1.0.jar").read_bytes() == b"first"


# ---------------------------------------------------------------------------------- versions (lock names)


def test_spark_modules_have_pysparks_version_and_scala():
    import pyspark

    core = [p.name for p in _pyspark_jars() if p.name.startswith("spark-core_")]
    assert len(core) == 1, core
    scala = re.fullmatch(r"spark-core_(\d+\.\d+)-.+\.jar", core[0]).group(1)
    spark_modules = [n for n in jvm.pinned_jar_names("spark") if n.startswith("spark-")]
    assert len(spark_modules) >= 3, spark_modules
    for name in spark_modules:
        match = re.fullmatch(r"spark-.+_(?P<scala>\d+\.\d+)-(?P<version>.+)\.jar", name)
        assert match, f"{name}: not a Spark module jar name"
        assert match["version"] == pyspark.__version__, f"{name}: pyspark is {pyspark.__version__}"
        assert match["scala"] == scala, f"{name}: pyspark's Scala binary is {scala}"


def test_hadoop_aws_matches_pysparks_hadoop():
    api = [p.name for p in _pyspark_jars() if p.name.startswith("hadoop-client-api-")]
    assert len(api) == 1, api
    hadoop = re.fullmatch(r"hadoop-client-api-(.+)\.jar", api[0]).group(1)
    ours = [n for n in jvm.pinned_jar_names("spark") if n.startswith("hadoop-")]
    assert ours == [f"hadoop-aws-{hadoop}.jar"], f"the spark group's Hadoop jars {ours} vs pyspark's Hadoop {hadoop}"


# ---------------------------------------------------------------------------------- the resolved spark group


# The group of the running pyspark: `spark` here, `spark-4.0` when `make test` runs these once more
# in .venv-spark40 (pyspark 4.0.2 stands for emr-spark-8.0.0's Spark 4.0.2 there).
@pytest.fixture(scope="module")
def spark_group() -> list[Path]:
    return jvm.classpath(jvm.installed_spark_group())  # JarsError "run `make deps`" when not resolved


@pytest.mark.spark
def test_resolved_spark_group_verifies_against_the_lock(spark_group):
    group = jvm.installed_spark_group()
    jvm.verify(group, jvm.group_dir(group), jvm.read_lock()[group])
    assert [p.name for p in spark_group] == jvm.pinned_jar_names(group)


@pytest.mark.spark
def test_no_class_of_the_spark_group_is_on_sparks_classpath_twice(spark_group):
    reference = _pyspark_jars()
    overlaps = class_overlaps(spark_group, reference)
    report = [f"{jar} and {other}: {len(classes)} classes, e.g. {classes[:3]}" for (jar, other), classes in overlaps.items()]
    assert not overlaps, "classes defined twice (exclude them in jvm/pom.xml):\n" + "\n".join(report)


@pytest.mark.spark
def test_no_artifact_of_the_spark_group_is_shipped_by_pyspark(spark_group):
    conflicts = artifact_conflicts(spark_group, _pyspark_jars())
    assert not conflicts, "exclude these in jvm/pom.xml (pyspark ships them):\n" + "\n".join(conflicts)
