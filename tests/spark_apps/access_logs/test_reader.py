"""Reading files as byte splits (no Spark): every split size gives the lines Hadoop's line reader gives."""
import gzip
import re
from datetime import date

import numpy as np
import pytest

from include.generators.access_logs import generate_lines
from spark_apps.access_logs import reader
from spark_apps.access_logs.batches import parse_buffer, parse_partition
from spark_apps.access_logs.reader import Split, deal, lines_of, plan_splits, read_split, s3_options
from tests.spark_apps.access_logs.test_batches import _answers

T = "[15/Jan/2024:10:00:00 +0000]"


def _hadoop_lines(data: bytes) -> list[str]:
    """What ``sc.textFile`` gives for a file: BOM dropped, \\n, \\r\\n and \\r end lines, U+FFFD for bad UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines and lines[-1] == b"":
        lines.pop()  # a terminator at the end of the file ends the last line, it does not start one
    return [line.decode("utf-8", "replace") for line in lines]


def _lines_read(split: Split, chunk: int) -> list[str]:
    out = []
    for text, starts, ends, replaced in read_split(split, {}, chunk):
        out += [replaced.get(i) or text[s:e].decode("utf-8") for i, (s, e) in enumerate(zip(starts, ends))]
    return out


def _ok(ip, url, status=200, size=100):
    """A valid line; ``url`` characters below U+0100 become one byte each (Latin-1), like raw logs."""
    return f'{ip} - - {T} "GET {url} HTTP/1.1" {status} {size} "-" "Mozilla/5.0"'.encode("latin-1")


AWKWARD = b"".join([
    b"\xef\xbb\xbf", _ok("10.0.0.1", "/bom-first"), b"\n",
    _ok("10.0.0.2", "/crlf"), b"\r\n",
    _ok("10.0.0.3", "/lone-cr"), b"\r",
    b"\n",  # an empty line (after the lone CR's line)
    _ok("10.0.0.4", "/caf\xe9.html"), b"\n",  # Latin-1 byte: invalid UTF-8
    _ok("10.0.0.5", "/\xe2\x82"), b"\n",  # a truncated UTF-8 sequence
    _ok("10.0.0.6", "/" + "long" * 400), b"\n",  # longer than the small chunks and splits below
    '10.0.0.7 - - [15/Jan/2024:10:00:00 +0000] "GET /ünï HTTP/1.1" 200 5 "-" "ä"'.encode("utf-8"), b"\n",
    b"junk\n",
    _ok("10.0.0.8", "/last-without-newline"),
])


@pytest.mark.parametrize("content", [AWKWARD, AWKWARD + b"\n", AWKWARD + b"\r\n\r\n", b"", b"\n", b"one line"])
def test_every_split_and_chunk_size_reads_the_lines_hadoop_reads(tmp_path, content):
    path = tmp_path / "web-1.log"
    path.write_bytes(content)
    expected = _hadoop_lines(content)
    for split_size in (1, 7, 64, 333, 1000, len(content) + 1):
        splits = plan_splits([(path.as_uri(), len(content))], 1, min_split=split_size, max_split=split_size)
        for chunk in (5, 100, 1 << 20):
            got = [line for split in splits for line in _lines_read(split, chunk)]
            assert got == expected, (split_size, chunk)


def test_gzip_is_one_split_and_reads_concatenated_members(tmp_path):
    path = tmp_path / "web-2.log.gz"
    path.write_bytes(gzip.compress(AWKWARD[:500]) + gzip.compress(AWKWARD[500:]))
    (split,) = plan_splits([(path.as_uri(), path.stat().st_size)], 8, min_split=1, max_split=1)
    assert split.gzip and (split.start, split.index) == (0, 0)
    assert _lines_read(split, 64) == _hadoop_lines(AWKWARD)


def test_listed_uri_spellings(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"x\ny\n")
    for uri in (f"file:{path}", f"file://{path}", path.as_uri()):  # Hadoop lists file:/x
        assert _lines_read(Split(uri, 0, 0, 4, False), 10) == ["x", "y"]


def test_plan_fills_the_partitions_and_deal_balances_them():
    files = [("file:/d/web-1.log", 1000), ("file:/d/web-2.log.gz", 300), ("file:/d/web-3.log", 10)]
    splits = plan_splits(files, 4, min_split=100, max_split=10_000)
    # 1010 plain bytes over 4 partitions: splits of at most 253 bytes; gzip whole
    assert [(s.file.rsplit("/", 1)[1], s.index, s.start, s.end) for s in splits] == [
        ("web-1.log", 0, 0, 250), ("web-1.log", 1, 250, 500), ("web-1.log", 2, 500, 750),
        ("web-1.log", 3, 750, 1000), ("web-2.log.gz", 0, 0, 300), ("web-3.log", 0, 0, 10)]
    groups = deal(splits, 4)
    assert sorted(sum(s.size for s in group) for group in groups) == [250, 260, 300, 500]  # largest first
    assert deal(splits[:1], 4) == [[splits[0]]]


def test_s3_options_follow_the_sessions_s3a_settings():
    moto = {"fs.s3a.endpoint": "http://127.0.0.1:4566", "fs.s3a.endpoint.region": "us-east-1",
            "fs.s3a.path.style.access": "true", "fs.s3a.access.key": "k", "fs.s3a.secret.key": "s"}
    assert s3_options(moto) == {"endpoint_override": "127.0.0.1:4566", "scheme": "http",
                                "force_virtual_addressing": False, "region": "us-east-1",
                                "access_key": "k", "secret_key": "s"}
    minio = {"fs.s3a.endpoint": "minio:9000", "fs.s3a.connection.ssl.enabled": "false"}
    assert s3_options(minio) == {"endpoint_override": "minio:9000", "scheme": "http",
                                 "force_virtual_addressing": True}
    assert s3_options({}) == {}  # EMR: the SDK's default chain, region looked up per bucket


def test_invalid_utf8_lines_come_decoded_and_the_buffer_stays():
    data = _ok("10.0.0.1", "/a") + b"\n" + _ok("10.0.0.2", "/caf\xe9") + b"\n" + "é ok\n".encode()
    text, starts, ends, replaced = lines_of(data)
    assert text is data and list(replaced) == [1]
    assert replaced[1].endswith('"GET /caf\ufffd HTTP/1.1" 200 100 "-" "Mozilla/5.0"')


def test_parsing_from_bytes_equals_parsing_the_decoded_lines(tmp_path):
    raw = b"\n".join(line for line, _truth in generate_lines(date(2024, 1, 15), 3000, seed=4, malformed_share=0.02))
    raw = AWKWARD + b"\n" + raw + b"\n" + AWKWARD
    path = tmp_path / "web-1.log"
    path.write_bytes(raw)
    expected = [a for b in parse_partition("f", 0, _hadoop_lines(raw), batch_lines=10**9) for a in _answers(b)]
    for split_size in (4096, len(raw)):
        got = []
        for split in plan_splits([(path.as_uri(), len(raw))], 1, min_split=split_size, max_split=split_size):
            first = 1
            for text, starts, ends, replaced in read_split(split, {}, 50_000):
                batch = parse_buffer(split.file, split.index, first, text, starts, ends, replaced)
                got += _answers(batch)
                first += batch.lines
        assert got == expected


def test_other_schemes_are_left_to_spark():
    assert reader.reads_itself("s3a://b/k") and reader.reads_itself("file:/x") and reader.reads_itself("s3://b/k")
    assert not reader.reads_itself("hdfs://nn/x") and not reader.reads_itself("gs://b/k")


@pytest.mark.spark
def test_same_lines_as_spark_text_file(spark, tmp_path):
    """The reference above is checked against the real thing: Hadoop's LineRecordReader via textFile."""
    for name, content in (("a.log", AWKWARD), ("b.log", AWKWARD + b"\r\n"), ("c.log.gz", gzip.compress(AWKWARD))):
        path = tmp_path / name
        path.write_bytes(content)
        assert spark.sparkContext.textFile(path.as_uri()).collect() == _hadoop_lines(
            gzip.decompress(content) if name.endswith(".gz") else content), name


@pytest.mark.parametrize("non_ascii", [
    [], [0], [4095, 4096], [10_000, 10_001, 19_999],  # at block edges, and in the unblocked tail
    list(range(0, 2_000_000, 3_000)),  # in more blocks than it loops over: the one-pass fallback
])
def test_non_ascii_bytes_are_all_found(non_ascii):
    buf = np.full(2_000_000 if len(non_ascii) > 100 else 20_000, ord("a"), dtype=np.uint8)
    buf[non_ascii] = 0xE9
    assert reader._non_ascii_bytes(buf).tolist() == non_ascii
