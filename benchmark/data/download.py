"""Fetch and unpack the official archives (urllib only), resumably and atomically.

``download_file`` is generic (also for SAM checkpoints): it streams into ``<dest>.part``, resumes a
partial file with an HTTP ``Range`` request, shows a tqdm bar on stderr and renames the finished
file into place, so ``dest`` only ever exists complete. ``download_domain`` adds the archive steps:
skip when a copy is already unpacked, ``zipfile.testzip`` before unpacking, unpack into a temporary
folder and rename it to ``<root>/<archive>``. A synthetic stand-in there (``data synth``) is replaced.
A domain without a single public archive (``archive_url`` None: the fundus datasets) is not
downloadable: :func:`no_archive_message` says so, and where its datasets are obtained.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urljoin

from tqdm import tqdm

from benchmark.core.errors import BenchError
from benchmark.core.io import replace_folder
from benchmark.data.datasets import SYNTHETIC_MARKER, resolve_domain_root
from benchmark.data.domains import Domain, get_domain

DEFAULT_BASE_URL = "https://automl-mm-bench.s3.amazonaws.com/semantic_segmentation/"
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "sam-peft-bench"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def download_file(url: str, dest: str | Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (skipped if ``dest`` exists); resumes ``<dest>.part``.

    Raises ``BenchError`` on an HTTP error or a broken transfer; the partial file is kept so that
    the next call resumes it.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # range past the end: the part may already hold the whole file
            if exc.headers.get("Content-Range", "").rpartition("/")[2] == str(start):
                os.replace(part, dest)
                return dest
            part.unlink()
            return download_file(url, dest, progress=progress, timeout=timeout)
        raise BenchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}" + _kept(part)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BenchError(f"download of {url} failed: {reason}" + _kept(part)) from None
    with resp:
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != start:
                raise BenchError(f"download of {url}: server answered an unexpected range "
                                 f"{resp.headers.get('Content-Range')!r}" + _kept(part))
            total = int(m.group(2)) if m.group(2) != "*" else None
        else:  # 200: the server ignored the Range header (or there was none): start over
            start = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length is not None else None
        done = start
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=dest.name, file=sys.stderr, disable=not progress, leave=False)
        try:
            with part.open("ab" if start else "wb") as f:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise BenchError(f"download of {url} interrupted after {done} bytes "
                             f"({type(exc).__name__}: {exc})" + _kept(part)) from None
        finally:
            bar.close()
    if total is not None and done != total:
        raise BenchError(f"download of {url} interrupted: got {done} of {total} bytes" + _kept(part))
    os.replace(part, dest)
    return dest


def _kept(part: Path) -> str:
    if part.exists() and part.stat().st_size:
        return f"; partial file kept at {part} ({part.stat().st_size} bytes), run again to resume"
    return ""


def no_archive_message(domain: Domain, root: Path) -> str:
    """One line: this domain has no archive to download, and how to find what to fetch by hand."""
    return (f"{domain.key}: no single public archive to download; place each of its datasets under "
            f"{root / domain.archive} (README, 'Retinal fundus datasets'); `sam-peft-bench data check "
            f"--domain {domain.key} --root {root}` names each missing one and where it is obtained")


def archive_url(domain: str | Domain, base_url: str = DEFAULT_BASE_URL) -> str:
    domain = get_domain(domain)
    if domain.archive_url is None:
        raise BenchError(f"{domain.key}: no single public archive to download")
    return urljoin(base_url if base_url.endswith("/") else base_url + "/", domain.archive_url)


def verify_zip(path: Path) -> None:
    """``BenchError`` unless ``path`` is a zip whose every member passes its CRC check."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BenchError(f"corrupt archive {path}: {exc}") from None
    if bad is not None:
        raise BenchError(f"corrupt archive {path}: member {bad!r} fails its CRC check")


def _unpack(zip_path: Path, target: Path) -> None:
    """Extract into a temporary sibling of ``target``, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.unpack-", dir=target.parent))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            root = tmp.resolve()
            for name in zf.namelist():  # refuse members that would land outside the folder
                if not (root / name).resolve().is_relative_to(root):
                    raise BenchError(f"corrupt archive {zip_path}: unsafe member path {name!r}")
            zf.extractall(tmp)
        replace_folder(tmp, target)  # only a synthetic copy can be there to replace
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def download_domain(domain: str | Domain, root: str | Path, *, base_url: str = DEFAULT_BASE_URL,
                    progress: bool = True, keep_archive: bool = False) -> Path:
    """Make ``<root>/<archive>`` hold the unpacked official archive; returns the domain folder.

    Idempotent: a present (non-synthetic) copy is not fetched again. A corrupt archive is deleted,
    reported and not unpacked.
    """
    domain = get_domain(domain)
    root = Path(root)
    if domain.archive_url is None:
        raise BenchError(no_archive_message(domain, root))
    target = root / domain.archive
    synthetic = (target / SYNTHETIC_MARKER).exists()
    if target.exists() and not synthetic:
        try:
            found = resolve_domain_root(domain, root)
        except BenchError:
            raise BenchError(f"{target} exists but holds no {domain.key} layout; move it away and retry") from None
        _log(f"{domain.key}: already present at {found}")
        return found
    url = archive_url(domain, base_url)
    zip_path = root / f"{domain.archive}.zip"
    _log(f"{domain.key}: downloading {url}")
    download_file(url, zip_path, progress=progress)
    try:
        verify_zip(zip_path)
    except BenchError as exc:
        zip_path.unlink()
        raise BenchError(f"{exc}; not unpacked, deleted it, run again to fetch it anew") from None
    _unpack(zip_path, target)
    if not keep_archive:
        zip_path.unlink()
    found = resolve_domain_root(domain, root)
    _log(f"{domain.key}: unpacked to {found}")
    return found
