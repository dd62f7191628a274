from datetime import datetime, timedelta, timezone

import pytest

from spark_apps.access_logs.parser import ParsedLine, ParseFailure, parse_line, split_request

TS = "[15/Jan/2024:10:00:00 +0100]"


def test_combined_line():
    line = ('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
            '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"')
    assert parse_line(line) == ParsedLine(
        "127.0.0.1", "10/Oct/2000:13:55:36 -0700", "GET", "/apache_pb.gif", "HTTP/1.0", 200, 2326,
        "http://www.example.com/start.html", "Mozilla/4.08 [en] (Win98; I ;Nav)")


def test_common_log_format_line_has_no_referrer_or_agent():
    parsed = parse_line(f'10.1.2.3 - - {TS} "POST /login HTTP/1.1" 302 512')
    assert (parsed.method, parsed.url, parsed.status, parsed.bytes) == ("POST", "/login", 302, 512)
    assert parsed.referrer is None and parsed.agent is None


def test_timestamp_keeps_its_offset():
    parsed = parse_line(f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 1')
    assert parsed.time == datetime(2024, 1, 15, 10, 0, tzinfo=timezone(timedelta(hours=1)))


def test_ipv6_client():
    parsed = parse_line(f'2001:db8::ff00:42:8329 - - {TS} "GET /v6 HTTP/2.0" 200 10 "-" "curl/8"')
    assert (parsed.ip, parsed.url, parsed.protocol) == ("2001:db8::ff00:42:8329", "/v6", "HTTP/2.0")


def test_dash_bytes_mean_zero_and_dash_referrer_agent_mean_none():
    parsed = parse_line(f'10.1.2.3 - - {TS} "GET /cached HTTP/1.1" 304 - "-" "-"')
    assert (parsed.status, parsed.bytes, parsed.referrer, parsed.agent) == (304, 0, None, None)


def test_request_with_spaces_in_the_target():
    parsed = parse_line(f'10.1.2.3 - - {TS} "GET /files/annual report 2023.pdf HTTP/1.1" 200 99')
    assert (parsed.method, parsed.url, parsed.protocol) == ("GET", "/files/annual report 2023.pdf", "HTTP/1.1")


def test_request_without_http_version():
    parsed = parse_line(f'10.1.2.3 - - {TS} "GET /index.html" 200 99')
    assert (parsed.method, parsed.url, parsed.protocol) == ("GET", "/index.html", None)


def test_escaped_quotes_in_request_and_agent():
    line = (f'10.1.2.3 - - {TS} "GET /q?s=\\"x\\" HTTP/1.1" 200 5 "-" '
            '"Mozilla/5.0 (compatible; \\"Quoted\\" Agent\\\\1.0)"')
    parsed = parse_line(line)
    assert parsed.url == '/q?s="x"'
    assert parsed.agent == 'Mozilla/5.0 (compatible; "Quoted" Agent\\1.0)'


def test_request_that_is_not_method_and_target_is_kept_as_logged():
    # Apache logs "-" for connections closed before a request (408).
    parsed = parse_line(f'10.1.2.3 - - {TS} "-" 408 -')
    assert (parsed.method, parsed.url, parsed.protocol, parsed.status) == (None, "-", None, 408)
    assert split_request("\\x16\\x03\\x01") == (None, "\\x16\\x03\\x01", None)


def test_replacement_character_from_invalid_utf8_parses():
    raw = f'10.1.2.3 - - {TS} "GET /caf\xe9.html HTTP/1.1" 200 7'.encode("latin-1")
    parsed = parse_line(raw.decode("utf-8", "replace"))
    assert parsed.url == "/caf\ufffd.html"


def test_trailing_extra_fields_after_combined_are_ignored():
    parsed = parse_line(f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 7 "-" "ua" "203.0.113.9" 0.004')
    assert (parsed.url, parsed.agent) == ("/", "ua")


@pytest.mark.parametrize(
    "line, reason",
    [
        ("", "empty line"),
        ("   ", "empty line"),
        ("hello", "missing client, ident or user field"),
        ('10.1.2.3 - - [15/Jan/2024:10:00 +0100] "GET / HTTP/1.1" 200 1', "missing or malformed [timestamp]"),
        (f"10.1.2.3 - - {TS} GET / HTTP/1.1 200 1", "request is not quoted"),
        (f'10.1.2.3 - - {TS} "GET /trunc', "unterminated request quote (truncated line?)"),
        (f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 2OO 1', "missing or invalid status code (truncated line?)"),
        (f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200', "missing or invalid byte count (truncated line?)"),
        (f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 12x', "missing or invalid byte count (truncated line?)"),
        (f'10.1.2.3 - - {TS} "GET / HTTP/1.1" 200 1 "http://ref" "Mozi',
         "malformed referrer/user-agent fields (truncated line?)"),
    ],
)
def test_unparseable_lines_return_a_reason(line, reason):
    assert parse_line(line) == ParseFailure(reason)

