"""Parsing lines into column batches: the Arrow (RE2) fast path must agree with ``parse_line``."""
import random
from datetime import date

import pytest

from include.generators.access_logs import generate_lines
from spark_apps.access_logs.batches import PLAIN_LINE, parse_batch, parse_partition
from spark_apps.access_logs.parser import ParsedLine, parse_line
from tests.spark_apps.access_logs.test_analyses import LINES

TS = "[15/Jan/2024:10:00:00 +0100]"


def _reference(line):
    """What the full Python parser says about one line: a fact tuple or the quarantine reason."""
    parsed = parse_line(line)
    if not isinstance(parsed, ParsedLine):
        return parsed.reason
    if parsed.bytes >= 2**63:  # the only extra rule of the batches: bytes must fit their int64 column
        return "byte count out of range"
    return parsed.ip, parsed.url, parsed.status, parsed.bytes


def _answers(batch):
    """Per input line, in line order: the fact tuple, or the quarantine reason."""
    facts = iter(batch.facts())
    reasons = {line: reason for line, reason, _raw in batch.quarantined}
    return [reasons[n] if n in reasons else next(facts) for n in range(batch.first_line, batch.first_line + batch.lines)]


def _mutations(line: str, rng) -> list[str]:
    """Damaged copies of a line: the edits that real logs and truncation produce."""
    out = [line + " ", line + "\t", line[:-1], line + ' "extra"', line + '"', " " + line, line.replace(" ", "\t", 1),
           line + " x", line + " x\ny", line + "\n", line + " \n "]
    odd = ['"', "\\", " ", "-", "x", "\n", "]", "[", "\u00a0", "٣", "0", "é"]
    for _ in range(12):
        i = rng.randrange(len(line) + 1)
        out.append(line[:i])  # truncated
        out.append(line[:i] + rng.choice(odd) + line[i:])  # one character too many
        if i < len(line):
            out.append(line[:i] + line[i + 1:])  # one character lost
            out.append(line[:i] + rng.choice(odd) + line[i + 1:])  # one character changed
    return out


def _corpus():
    rng = random.Random(3)
    lines = [raw.decode("utf-8", "replace") for raw, _truth in generate_lines(date(2024, 1, 15), 400, seed=5)]
    lines += [line.rsplit(' "', 2)[0] for line in lines[:100]]  # the same requests in Common Log Format
    lines += LINES + [
        f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 7 "-" "ua" "203.0.113.9" 0.004',  # trailing extra fields
        f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 7 "-" "ua""x"',  # junk glued to the agent: invalid
        f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 7 "-" "ua"   ',  # trailing spaces: valid
        f'10.1.2.3 - - {TS} "GET / HTTP/1.1" ٢٠٠ ٣',  # Unicode digits: Python's \d accepts them
        f'10.1.2.3 - - {TS} "GET /a b HTTP/1.1" 200 -',
        f'10.1.2.3 - - {TS} "" 400 0 "-" "-"',
        f'10.1.2.3\t- - {TS} "GET / HTTP/1.1" 200 1',
        f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 {"9" * 18}',
        f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 {"9" * 19}',  # too big for int64: quarantined
        f'ünïcode-host - - {TS} "GET /ü HTTP/1.1" 200 1 "-" "ä"',
        # clients around the 16-byte key of the fast path, and host names / full IPv6 beyond it
        f'123.123.123.123 - - {TS} "GET / HTTP/1.1" 200 1',
        f'1234567890123456 - - {TS} "GET / HTTP/1.1" 200 1',
        f'crawl-66-249-66-1.googlebot.com - - {TS} "GET /robots.txt HTTP/1.1" 200 68 "-" "Googlebot/2.1"',
        f'2001:0db8:85a3:0000:0000:8a2e:0370:7334 - - {TS} "GET /x HTTP/1.1" 404 - "-" "ua"',
        # ident and user other than '-': the request's quote is not at its usual place
        f'10.1.2.3 - frank {TS} "GET / HTTP/1.1" 200 1',
        f'10.1.2.3 ident - {TS} "GET / HTTP/1.1" 200 1',
        f'10.1.2.3 - -x {TS} "GET / HTTP/1.1" 200 1',
        f'10.1.2.3 - - {TS} "GET /a" 200 1',  # a request short enough to sit inside its string view
        # byte counts of every length the fast path reads, as the last field and before the referrer
        *[f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 {"987654321098765432"[:k]}' for k in range(1, 19)],
        *[f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 {"100000000000000009"[:k]} "-" "ua"' for k in range(1, 19)],
    ]
    return [candidate for line in lines for candidate in [line, *_mutations(line, rng)]]


CORPUS = _corpus()


def test_fast_path_and_full_parser_agree_line_by_line():
    assert len(CORPUS) > 10000
    expected = [_reference(line) for line in CORPUS]
    assert _answers(parse_batch("f.log", 0, 1, CORPUS)) == expected
    # and in many small batches, where most batches mix both paths
    got = [answer for b in parse_partition("f.log", 0, CORPUS, batch_lines=7) for answer in _answers(b)]
    assert got == expected


def test_the_fast_path_takes_the_ordinary_lines():
    import pyarrow as pa
    import pyarrow.compute as pc

    generated = [raw.decode("utf-8", "replace") for raw, truth in generate_lines(date(2024, 1, 15), 2000, seed=9)
                 if truth is not None and b"\\" not in raw]
    plain = pc.match_substring_regex(pa.array(generated), PLAIN_LINE).to_pylist()
    assert sum(plain) == len(generated)  # no ordinary line pays for the Python parser


@pytest.mark.parametrize("line", [
    f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 1 "-" "ua" \n',  # whitespace Python's \s knows, RE2's " " not
    f'10.1.2.3\u00a0- - {TS} "GET / HTTP/1.1" 200 1',  # non-ASCII space in a field
    f'10.1.2.3 - - {TS} "GET / HTTP/1.1" ٢٠٠ 1',  # non-ASCII digits
])
def test_lines_the_fast_path_leaves_to_python(line):
    import pyarrow as pa
    import pyarrow.compute as pc

    assert pc.match_substring_regex(pa.array([line]), PLAIN_LINE).to_pylist() == [False]


def test_batch_facts_round_trip_in_line_order():
    lines = [LINES[0], LINES[10], LINES[3], LINES[0]]
    (batch,) = parse_partition("f.log", 4, lines)
    assert (batch.file, batch.file_partition, batch.first_line, batch.lines) == ("f.log", 4, 1, 4)
    assert list(batch.facts()) == [("10.0.0.1", "/index.html", 200, 1000), ("2001:db8::1", "/missing", 404, 0),
                                   ("10.0.0.1", "/index.html", 200, 1000)]
    assert batch.ips == ["10.0.0.1", "2001:db8::1"] and batch.ip_codes.tolist() == [0, 1, 0]
    assert [q[:2] for q in batch.quarantined] == [(2, "unterminated request quote (truncated line?)")]


def test_every_line_lands_in_exactly_one_batch():
    batches = list(parse_partition("f.log", 0, LINES, batch_lines=5))
    assert [(b.first_line, b.lines) for b in batches] == [(1, 5), (6, 5), (11, 3)]
    assert list(parse_partition("f.log", 0, LINES[:5], batch_lines=5))[-1].lines == 5  # no empty tail batch
    (empty,) = parse_partition("f.log", 7, [])  # an empty partition still reports itself
    assert (empty.lines, empty.requests, empty.quarantined) == (0, 0, [])
