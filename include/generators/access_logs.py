"""Generate realistic web-server access logs (Combined Log Format) for one day.

    python -m include.generators.access_logs --out /tmp/lake/raw/access_logs \\
        --date 2024-01-15 --lines 1000000 --files 4 --gzip --seed 7

writes ``<out>/date=2024-01-15/web-1.log.gz`` ... ``web-4.log.gz`` (one file per
web server, lines dealt round-robin, timestamps increasing through the day).

What makes it realistic enough to exercise the parser and the analyses:

* URLs and clients are Zipf-distributed (a few hot pages and heavy clients, a
  long tail), about 10% of clients are IPv6, a few clients are crawlers with bot
  user agents;
* status mix of a busy site (mostly 200, some 304/30x, 404s concentrated on
  scanner/missing paths, a little 400/401/403/429/5xx); 304s, HEAD requests and
  some errors log ``-`` as byte count;
* rare awkward-but-valid lines: a URL with a space, a user agent with escaped
  quotes, a request without HTTP version, a raw Latin-1 byte (invalid UTF-8);
* a configurable share of malformed lines: truncated before the request's
  closing quote (so they can never be mistaken for valid lines) or junk.

Deterministic for a given seed. ``generate_lines`` also yields the truth for every
line (the request fields as the job should see them, or ``None`` for a malformed
line), so tests can count the expected answers without using the parser.
"""
from __future__ import annotations

import argparse
import gzip
import itertools
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

BROWSER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.4.0",
]
BOT_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
]
MISSING_PATHS = ["/wp-login.php", "/favicon.ico", "/.env", "/old-page.html", "/xmlrpc.php"]
# (status, weight) for ordinary page requests; 404s mostly come from MISSING_PATHS.
STATUS_MIX = [(200, 860), (304, 50), (301, 15), (302, 15), (404, 25), (400, 5), (401, 5),
              (403, 8), (429, 4), (500, 8), (503, 5)]


@dataclass(frozen=True)
class Request:
    """What a valid generated line says, as the job should read it."""
    ip: str
    method: str
    url: str
    status: int
    bytes: int  # 0 where the line logs '-'


def _zipf_cum_weights(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (k ** s) for k in range(1, n + 1)))


def _url_catalog(rng: random.Random, n: int) -> list[tuple[str, int]]:
    """(path, typical body size) pairs; index 0 is the hottest page."""
    fixed = [("/", 8200), ("/index.html", 8200), ("/static/css/site.css", 14500),
             ("/static/js/app.js", 95000), ("/api/v1/session", 350), ("/search?q=shoes", 6100)]
    sections = ["products", "blog", "docs", "api/v1/items", "images", "category"]
    urls = list(fixed)
    while len(urls) < n:
        section = rng.choice(sections)
        ident = rng.randrange(1, 100000)
        if section == "images":
            urls.append((f"/images/{ident}.jpg", int(rng.lognormvariate(10.5, 0.8))))
        elif section.startswith("api"):
            urls.append((f"/{section}/{ident}?fields=name,price", int(rng.lognormvariate(6.5, 0.6))))
        else:
            urls.append((f"/{section}/{ident}", int(rng.lognormvariate(8.3, 0.5))))
    return urls[:n]


def _client_pool(rng: random.Random, n: int) -> list[tuple[str, bool]]:
    """(address, is_bot) pairs; about 10% IPv6 and 3% crawlers."""
    clients = []
    for _ in range(n):
        if rng.random() < 0.10:
            groups = [rng.randrange(0, 0x10000) for _ in range(4)]
            address = "2001:db8:" + ":".join(f"{g:x}" for g in groups) + "::" + f"{rng.randrange(1, 0xffff):x}"
        else:
            address = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        clients.append((address, rng.random() < 0.03))
    return clients


def _clf_time(moment: datetime) -> str:
    return f"{moment.day:02d}/{MONTHS[moment.month - 1]}/{moment.year}:{moment:%H:%M:%S} +0000"


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace('"', '\\"')


def generate_lines(
    day: date,
    lines: int,
    seed: int = 1,
    malformed_share: float = 0.002,
    n_urls: int = 2000,
    n_clients: int | None = None,
) -> Iterator[tuple[bytes, Request | None]]:
    """Yield ``(raw line without newline, truth)``; truth is ``None`` for a malformed line."""
    rng = random.Random(seed)
    urls = _url_catalog(rng, n_urls)
    clients = _client_pool(rng, n_clients or max(50, lines // 25))
    url_weights = _zipf_cum_weights(len(urls), 1.1)
    client_weights = _zipf_cum_weights(len(clients), 1.2)
    statuses = [s for s, _ in STATUS_MIX]
    status_weights = list(itertools.accumulate(w for _, w in STATUS_MIX))
    start = datetime(day.year, day.month, day.day)
    step = 86400 / max(lines, 1)
    batch = 4096
    produced = 0
    while produced < lines:
        size = min(batch, lines - produced)
        url_picks = rng.choices(urls, cum_weights=url_weights, k=size)
        client_picks = rng.choices(clients, cum_weights=client_weights, k=size)
        status_picks = rng.choices(statuses, cum_weights=status_weights, k=size)
        for i in range(size):
            moment = start + timedelta(seconds=int((produced + i) * step))
            ip, is_bot = client_picks[i]
            url, typical = url_picks[i]
            status = status_picks[i]
            method, protocol = "GET", "HTTP/1.1"
            agent = rng.choice(BOT_AGENTS) if is_bot else rng.choice(BROWSER_AGENTS)
            roll = rng.random()
            if roll < 0.02:  # scanners and stale links: concentrated 404s
                url, status = rng.choice(MISSING_PATHS), 404
            elif roll < 0.03:
                method = "HEAD"
            elif roll < 0.04:
                method = "POST"
            if status == 200 and method != "HEAD":
                body = max(1, int(typical * rng.uniform(0.8, 1.2)))
            elif status in (304, 301, 302) or method == "HEAD" or (status >= 500 and rng.random() < 0.5):
                body = 0  # logged as '-'
            else:
                body = rng.randrange(150, 600)
            # Rare awkward but valid lines (the job must parse them).
            awkward = rng.random()
            if awkward < 0.001:
                url = "/files/annual report 2023.pdf"
            elif awkward < 0.002:
                agent = 'Mozilla/5.0 (compatible; "Quoted" Agent\\1.0)'
            elif awkward < 0.003:
                protocol = ""
            elif awkward < 0.004:
                url = "/caf\xe9.html"  # written as one raw 0xE9 byte: invalid UTF-8
            request = f"{method} {url} {protocol}" if protocol else f"{method} {url}"
            referrer = "-" if is_bot or rng.random() < 0.4 else "https://www.example.com" + urls[rng.randrange(20)][0]
            line = (f'{ip} - - [{_clf_time(moment)}] "{_escape(request)}" {status} {body if body else "-"} '
                    f'"{referrer}" "{_escape(agent)}"')
            raw = line.encode("latin-1")
            if rng.random() < malformed_share:
                if rng.random() < 0.8:
                    # Cut before the request's closing quote: never a valid line.
                    closing = raw.index(b'" ', raw.index(b'"') + 1)
                    yield raw[: rng.randrange(0, closing)], None
                else:
                    yield b"\x16\x03\x01 garbage " + bytes(rng.randrange(33, 127) for _ in range(12)), None
            else:
                # The job reads text as UTF-8 with replacement (Hadoop Text), so that is the truth.
                seen_url = url.encode("latin-1").decode("utf-8", "replace")
                yield raw, Request(ip, method, seen_url, status, body)
        produced += size


def write_day(
    out_dir: str | Path,
    day: date,
    lines: int,
    files: int = 1,
    gzip_files: bool = False,
    seed: int = 1,
    malformed_share: float = 0.002,
) -> list[Path]:
    """Write the day's lines into ``out_dir/date=YYYY-MM-DD/web-<n>.log[.gz]``; returns the files."""
    folder = Path(out_dir) / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".log.gz" if gzip_files else ".log"
    paths = [folder / f"web-{i}{suffix}" for i in range(1, files + 1)]
    # compresslevel 1: generating big test days should not be dominated by gzip.
    handles = [gzip.open(p, "wb", compresslevel=1) if gzip_files else open(p, "wb", buffering=1 << 20)
               for p in paths]
    try:
        for index, (raw, _truth) in enumerate(generate_lines(day, lines, seed, malformed_share)):
            handles[index % files].write(raw + b"\n")
    finally:
        for handle in handles:
            handle.close()
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Generate one day of Combined Log Format access logs.")
    parser.add_argument("--out", required=True, help="base folder; files go to <out>/date=YYYY-MM-DD/")
    parser.add_argument("--date", required=True, type=date.fromisoformat)
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--malformed-share", type=float, default=0.002)
    args = parser.parse_args(argv)
    for path in write_day(args.out, args.date, args.lines, args.files, args.gzip, args.seed, args.malformed_share):
        print(path)


if __name__ == "__main__":
    main()
