"""Read access-log files as byte splits inside the Spark tasks (pyarrow file systems).

Why not ``sc.textFile``: its JVM line reader hands every line to the Python worker as a
separate string, and at 10 M lines that hand-over cost more than the parsing itself. Here the
driver only plans byte ranges (``Split``); each task opens its file with pyarrow (local files,
S3 through ``pyarrow.fs.S3FileSystem``), reads tens of MB at a time and gives the parser whole
buffers of lines, so no line ever crosses the JVM-Python boundary. What ``textFile`` did for
us is done here the same way, so the lines (and quarantine's line numbers and raw text) are
the ones Hadoop's ``LineRecordReader`` gives:

* a line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r``; the last line may lack its terminator;
  a UTF-8 byte-order mark at the start of a file is dropped;
* invalid UTF-8 in a line is replaced by U+FFFD (Hadoop's ``Text.toString``), so a stray
  Latin-1 byte changes one character and the line still parses;
* an uncompressed file is cut into splits at any byte; a split owns the lines that *start*
  inside it (the one straddling its end is read on into the next split's bytes), the same
  rule as Hadoop's, so every line is read exactly once; ``*.gz`` files are one split each
  (gzip cannot be entered in the middle).

Line numbers: a split does not know how many lines the splits before it hold; it numbers its
own lines from 1, and ``ingest.account_lines`` adds the line counts of the file's earlier
splits on the driver after the parse (no second pass over the bytes).

Other URI schemes (``hdfs://``, ``gs://`` ...) are not handled here; ``ingest.parse_files``
reads those with ``textFile`` as before.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

SCHEMES = ("file", "s3", "s3a", "s3n")
CHUNK_BYTES = 32 << 20  # bytes read and parsed at a time: large enough to amortise the per-call work
MIN_SPLIT_BYTES = 32 << 20  # no point cutting a file finer than one chunk
MAX_SPLIT_BYTES = 512 << 20  # and keep a task's share (and its cached batches) bounded
_PROBE_BYTES = 64 << 10
_BOM = b"\xef\xbb\xbf"
_ASCII_BLOCK = 4096  # bytes per block in the search for non-ASCII bytes
_MAX_FLAGGED_BLOCKS = 256


@dataclass(frozen=True)
class Split:
    """Bytes ``start .. end - 1`` of ``file`` (URI as listed); the lines starting there belong to it."""

    file: str
    index: int  # split number within the file, from 0 (the batches' ``file_partition``)
    start: int
    end: int
    gzip: bool

    @property
    def size(self) -> int:
        return self.end - self.start


def reads_itself(uri: str) -> bool:
    """Whether this module reads ``uri`` (else ``textFile`` does)."""
    return uri.split(":", 1)[0].lower() in SCHEMES


def plan_splits(files: list[tuple[str, int]], partitions: int, min_split: int | None = None,
                max_split: int | None = None) -> list[Split]:
    """Cut ``files`` (``(uri, size in bytes)``) into about ``partitions`` splits of similar size.

    gzip files are one split whatever their size; uncompressed ones are cut into equal parts of
    ``min_split .. max_split`` bytes, so that the splits fill ``partitions`` tasks.
    """
    min_split = MIN_SPLIT_BYTES if min_split is None else min_split
    max_split = MAX_SPLIT_BYTES if max_split is None else max_split
    plain_bytes = sum(size for uri, size in files if not uri.endswith(".gz"))
    target = min(max(min_split, math.ceil(plain_bytes / max(1, partitions))), max_split)
    splits = []
    for uri, size in files:
        if uri.endswith(".gz") or size <= target:
            splits.append(Split(uri, 0, 0, size, uri.endswith(".gz")))
            continue
        parts = math.ceil(size / target)
        bounds = [size * i // parts for i in range(parts + 1)]
        splits.extend(Split(uri, i, bounds[i], bounds[i + 1], False) for i in range(parts))
    return splits


def deal(splits: list[Split], partitions: int) -> list[list[Split]]:
    """Splits grouped into at most ``partitions`` groups of similar total size (largest first)."""
    groups: list[list[Split]] = [[] for _ in range(min(partitions, len(splits)))]
    sizes = [0] * len(groups)
    for split in sorted(splits, key=lambda s: (-s.size, s.file, s.index)):
        smallest = sizes.index(min(sizes))
        groups[smallest].append(split)
        sizes[smallest] += split.size
    return [sorted(group, key=lambda s: (s.file, s.index)) for group in groups if group]


def s3_options(hadoop_conf) -> dict:
    """``pyarrow.fs.S3FileSystem`` arguments from the session's ``fs.s3a.*`` Hadoop settings.

    The tasks read with the endpoint and keys Spark itself reads s3a:// with (the embedded
    moto, MinIO in docker-compose); where none are set (EMR: EMRFS serves s3://, credentials
    from the instance profile) pyarrow uses the AWS SDK's default chain, as EMRFS does. The
    keys travel in the task closure, as Spark ships its Hadoop configuration to executors.
    """
    def get(key):
        value = hadoop_conf.get(key)
        return value.strip() if value else None

    options: dict = {}
    endpoint = get("fs.s3a.endpoint")
    if endpoint and endpoint not in ("s3.amazonaws.com", "s3.us-east-1.amazonaws.com"):
        scheme, sep, host = endpoint.partition("://")
        if not sep:
            ssl = (get("fs.s3a.connection.ssl.enabled") or "true").lower() != "false"
            scheme, host = ("https" if ssl else "http"), endpoint
        options["endpoint_override"] = host.rstrip("/")
        options["scheme"] = scheme
        # Hadoop's default for a custom endpoint is virtual-host style unless path style is asked for.
        options["force_virtual_addressing"] = (get("fs.s3a.path.style.access") or "false").lower() != "true"
    region = get("fs.s3a.endpoint.region") or get("fs.s3a.region")
    if region:
        options["region"] = region
    access, secret = get("fs.s3a.access.key"), get("fs.s3a.secret.key")
    if access and secret:
        options["access_key"], options["secret_key"] = access, secret
        token = get("fs.s3a.session.token")
        if token:
            options["session_token"] = token
    return options


def _filesystem(uri: str, s3: dict):
    """``(pyarrow file system, path)`` of a listed file URI (``file:/x``, ``file:///x``, ``s3a://b/k``)."""
    import pyarrow.fs as pafs

    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    if scheme == "file":
        path = rest[2:] if rest.startswith("//") else rest
        return pafs.LocalFileSystem(), path
    if scheme in ("s3", "s3a", "s3n"):
        bucket_and_key = rest.removeprefix("//")
        options = dict(s3)
        if "region" not in options and "endpoint_override" not in options:
            options["region"] = pafs.resolve_s3_region(bucket_and_key.split("/", 1)[0])
        return pafs.S3FileSystem(**options), bucket_and_key
    raise ValueError(f"not a file:// or s3:// URI: {uri}")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_malloc_tuned = False


def keep_freed_memory() -> None:
    """Let this process's malloc (glibc) keep freed memory rather than hand it back to the kernel.

    A block is a 32 MB buffer and some of its temporaries are as large; by default glibc maps an
    allocation that large afresh (mmap) and unmaps it when freed, so every block paid again for the
    page faults of its memory: 27 ms per 32 MB on the 2-core VM (~3 us per 4 KB page), a third of
    reading a block. With a high mmap threshold and trim threshold they come from the heap, which
    stays mapped: the worker's resident memory stays at its peak (a few hundred MB) instead. Called
    once per Python worker by the tasks that read blocks; a no-op where the C library has no mallopt.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 512 << 20)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def _read_block(handle, pos: int, size: int) -> bytearray:
    """Up to ``size`` bytes from ``pos`` (fewer only at the end of the file)."""
    block = bytearray(size)
    handle.seek(pos)
    got = handle.readinto(block)
    if got < size:
        del block[got:]
    return block


def _plain_blocks(handle, start: int, end: int, chunk: int) -> Iterator[bytearray]:
    """Blocks of whole lines of the lines starting in ``[start, end)``; the last may lack its ``\\n``.

    Each block is read from the start of its first line and cut after its last ``\\n`` in place
    (a bytearray shrinks without a copy); the cut-off partial line is read again as the start of
    the next block. Gluing a carried tail onto the next block and slicing the cut instead copied
    every block twice: a third of the reading time.
    """
    begin = 0
    if start > 0:  # skip the line that started in the previous split (it reads it to its end)
        pos = start - 1
        while True:
            probe = handle.read_at(_PROBE_BYTES, pos)
            if not probe:
                return
            newline = probe.find(b"\n")
            if newline >= 0:
                begin = pos + newline + 1
                break
            pos += len(probe)
    if begin >= end:
        return
    pos, size, past_end = begin, chunk, _PROBE_BYTES
    while True:
        want = min(size, end - pos + past_end)  # the last block: only a little past the split's end
        block = _read_block(handle, pos, want)
        at_eof = len(block) < want
        if not block:
            return
        last = end - 1 - pos  # where byte end - 1 is in this block: its line is the split's last
        cut = block.find(b"\n", last) + 1 if last < len(block) else block.rfind(b"\n") + 1
        if cut:
            if cut < len(block):
                del block[cut:]
            yield block
            if last < len(block):
                return
            pos, size, past_end = pos + cut, chunk, _PROBE_BYTES
        elif at_eof:  # the file's last line, without a terminator
            yield block
            return
        else:  # no line ends in this block: read a larger one from the same line start
            size, past_end = size * 2, past_end * 2


def _gzip_blocks(stream, chunk: int) -> Iterator[bytes]:
    carry = b""
    while True:
        block = stream.read(chunk)
        if not block:
            if carry:
                yield carry
            return
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        carry = data[cut:]


def _non_ascii_bytes(buf: np.ndarray) -> np.ndarray:
    """Positions of the bytes >= 0x80 in ``buf``, found block by block.

    A block's maximum is far cheaper than a comparison plus ``flatnonzero`` over every byte, and
    in a log the few non-ASCII bytes sit in a few blocks; when many blocks have some, one pass
    over every byte is cheaper than looping over the blocks.
    """
    whole = len(buf) // _ASCII_BLOCK * _ASCII_BLOCK
    flagged = np.flatnonzero(buf[:whole].reshape(-1, _ASCII_BLOCK).max(axis=1) >= 0x80)
    if len(flagged) > _MAX_FLAGGED_BLOCKS:
        return np.flatnonzero(buf >= 0x80)
    parts = [block * _ASCII_BLOCK + np.flatnonzero(buf[block * _ASCII_BLOCK:(block + 1) * _ASCII_BLOCK] >= 0x80)
             for block in flagged.tolist()]
    parts.append(whole + np.flatnonzero(buf[whole:] >= 0x80))
    return np.concatenate(parts)


def _invalid_utf8(data: bytes, newlines: np.ndarray) -> dict[int, str]:
    """``{line index: the line decoded with U+FFFD replacements}`` for lines that are not valid UTF-8.

    Replacement is Hadoop's ``Text.toString`` rule (each invalid sequence becomes U+FFFD). Only
    lines holding a non-ASCII byte (``_non_ascii_bytes``) are decoded; the buffer itself is
    never copied: the parser takes these lines from here instead.
    """
    if data.isascii():
        return {}
    at = _non_ascii_bytes(np.frombuffer(data, dtype=np.uint8))
    replaced = {}
    for line in np.unique(np.searchsorted(newlines, at)).tolist():  # line k ends at newlines[k]
        raw = data[int(newlines[line - 1]) + 1 if line else 0:int(newlines[line]) if line < len(newlines) else len(data)]
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            replaced[line] = raw.decode("utf-8", "replace")
    return replaced


def lines_of(data: bytes, file_start: bool = False) -> tuple[bytes, np.ndarray, np.ndarray, dict[int, str]]:
    """``(text, starts, ends, replaced)``: the lines of a block as byte ranges of ``text``
    (terminators excluded), and the lines that are not valid UTF-8 as decoded text (see
    ``_invalid_utf8``; ``batches.parse_buffer`` takes those from there).

    ``text`` is ``data`` with ``\\r\\n`` and lone ``\\r`` turned into ``\\n`` and, at the start of
    a file, the byte-order mark dropped.
    """
    if file_start and data.startswith(_BOM):
        data = data[len(_BOM):]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    ends = newlines if data.endswith(b"\n") or not data else np.append(newlines, len(data))
    starts = np.empty(len(ends), dtype=np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return data, starts, ends.astype(np.int64), _invalid_utf8(data, newlines)


def read_split(split: Split, s3: dict, chunk: int = CHUNK_BYTES) -> Iterator[tuple]:
    """The split's lines, block by block, as ``lines_of`` gives them."""
    fs, path = _filesystem(split.file, s3)
    first = split.start == 0
    if split.gzip:
        with fs.open_input_stream(path, compression="gzip") as stream:
            for block in _gzip_blocks(stream, chunk):
                yield lines_of(block, first)
                first = False
        return
    with fs.open_input_file(path) as handle:
        for block in _plain_blocks(handle, split.start, split.end, chunk):
            yield lines_of(block, first)
            first = False
