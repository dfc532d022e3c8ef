"""``sam-peft-bench data synth|check|download``: synthetic stand-ins, data checks, official archives.

Logs go to stderr; the check report (summaries and problems) goes to stdout.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmark.data.checks import check_domain
from benchmark.data.datasets import is_synthetic
from benchmark.data.domains import DOMAINS
from benchmark.data.download import DEFAULT_BASE_URL, download_domain, no_archive_message
from benchmark.data.synth import split_counts, synth_domain


def run_synth(*, domains: list[str], out: Path, n: int, seed: int) -> int:
    for key in domains:
        t0 = time.perf_counter()
        path = synth_domain(key, out, n=n, seed=seed)
        counts = ", ".join(f"{s} {c}" for s, c in split_counts(DOMAINS.get(key), n).items())
        print(f"{key}: wrote {path} ({counts}) in {time.perf_counter() - t0:.2f}s", file=sys.stderr)
    return 0


def run_check(*, domains: list[str], root: Path) -> int:
    """Print a summary per split and every problem (a missing fundus dataset: its folder and where it
    is obtained); 0 when all is clean, 1 otherwise."""
    total = 0
    for key in domains:
        summaries, problems = check_domain(key, root)
        tag = " [synthetic]" if is_synthetic(key, root) else ""
        print(f"{key}{tag}")
        for s in summaries:
            print(f"  {s}")
        for p in problems:
            print(f"  PROBLEM {p}")
        total += len(problems)
    if total:
        print(f"data check: {total} problem{'s' if total > 1 else ''}", file=sys.stderr)
        return 1
    print("data check: ok", file=sys.stderr)
    return 0


def run_download(*, domains: list[str], root: Path, base_url: str, progress: bool = True) -> int:
    """Download every archive; a domain without one gets one line saying where its data comes from
    (exit 1 unless its data is already complete under ``root``)."""
    manual = []
    for key in domains:
        domain = DOMAINS.get(key)
        if domain.archive_url is None:
            if check_domain(domain, root, workers=1)[1]:
                print(no_archive_message(domain, root), file=sys.stderr)
                manual.append(key)
            else:
                print(f"{key}: already present under {root / domain.archive}", file=sys.stderr)
            continue
        download_domain(key, root, base_url=base_url, progress=progress)
    return 1 if manual else 0


def add_commands(subparsers) -> None:
    data = subparsers.add_parser("data", help="synthesise, check or download the benchmark data")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    keys = ", ".join(DOMAINS.keys())

    p = sub.add_parser("synth", help="write synthetic stand-ins in the official layout")
    p.add_argument("--domain", required=True, help=f"domain key(s), comma-separated, or 'all' ({keys})")
    p.add_argument("--out", required=True, type=Path, help="data root to write <archive>/ folders into")
    p.add_argument("--n", type=int, default=8, help="training images per domain; val and tests get max(2, n//2)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=lambda a: run_synth(domains=DOMAINS.parse_list(a.domain), out=a.out, n=a.n, seed=a.seed))

    p = sub.add_parser("check", help="decode and validate every file of every split")
    p.add_argument("--domain", required=True, help=f"domain key(s), comma-separated, or 'all' ({keys})")
    p.add_argument("--root", required=True, type=Path, help="data root holding the unpacked archives")
    p.set_defaults(func=lambda a: run_check(domains=DOMAINS.parse_list(a.domain), root=a.root))

    p = sub.add_parser("download", help="fetch and unpack the official archives")
    p.add_argument("--domain", required=True, help=f"domain key(s), comma-separated, or 'all' ({keys})")
    p.add_argument("--root", required=True, type=Path, help="data root to unpack <archive>/ folders into")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="folder URL holding <archive>.zip")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=lambda a: run_download(domains=DOMAINS.parse_list(a.domain), root=a.root,
                                               base_url=a.base_url, progress=not a.no_progress))

