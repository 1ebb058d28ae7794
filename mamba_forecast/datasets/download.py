"""``mamba-forecast data download``: fetch a registered set from its public source into the data folder.

Standard library only (``urllib``). Each file is written to a temporary name in the target folder and renamed
into place only after its SHA-256 matched the registry's (an interrupted or corrupt download never leaves a file
under the real name). Sets whose hash is not in the registry are kept with the computed hash printed and marked
unverified. Any failure is a :class:`DownloadError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .readers import find_file, resolve_data_dir
from .registry import _CUSTOM, DataFile, DatasetSpec, get_spec

_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed (unreachable source, HTTP error, checksum mismatch); the message is one line."""


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_status(
    spec: str | DatasetSpec, data_dir: str | os.PathLike | None = None
) -> list[tuple[DataFile, Path | None]]:
    """``(file, path or None)`` for each file of a set: where it lies in the data folder (or its ``.gz``)."""
    spec = get_spec(spec)
    try:
        root = resolve_data_dir(data_dir)
    except FileNotFoundError:
        return [(f, None) for f in spec.files]
    return [(f, find_file(root, f) if root.is_dir() else None) for f in spec.files]


def _tmp_path(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    return Path(tmp)


def _fetch(url: str, folder: Path, spec: DatasetSpec, timeout: float) -> Path:
    """Stream ``url`` into a temporary file in ``folder``; a failure removes it and raises ``DownloadError``."""
    from .. import __version__

    tmp = _tmp_path(folder, Path(url).name or spec.name)
    request = urllib.request.Request(url, headers={"User-Agent": f"mamba-forecast/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(
            f"{spec.name}: {url} answered HTTP {exc.code} ({exc.reason}); the source may have "
            f"moved: fetch the file by hand into {folder}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(
            f"{spec.name}: cannot reach {url} ({reason}); check the network connection (offline?), "
            f"or fetch the file by hand into {folder}"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _extract(archive: Path, member: str, folder: Path, spec: DatasetSpec, url: str) -> Path:
    """Copy the member whose base name is ``member`` out of a zip archive into a temporary file."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if Path(n).name == member]
            if not names:
                raise DownloadError(f"{spec.name}: {member} is not in the archive {url}")
            tmp = _tmp_path(folder, member)
            with zf.open(names[0]) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
    except zipfile.BadZipFile:
        raise DownloadError(f"{spec.name}: {url} did not return a zip archive") from None
    return tmp


def _looks_like_lfs_pointer(path: Path) -> bool:
    if path.stat().st_size > 1024:
        return False
    return path.read_bytes().startswith(b"version https://git-lfs")


def download(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    force: bool = False,
    timeout: float = 60.0,
    log=print,
) -> list[Path]:
    """Fetch the files of a registered set into ``data_dir`` (default: :func:`default_data_dir`, created).

    A file already present is kept when its hash matches (or when the registry has no hash), unless ``force``.
    Returns the paths of the set's files. Raises :class:`DownloadError` (one-line message; nothing is left
    under the file's name) when the source is unreachable, answers an error, or the checksum does not match.
    """
    spec = get_spec(name)
    if spec.name in _CUSTOM:
        raise ValueError(f"{spec.name} is a local CSV file, not a registered set: nothing to download")
    root = resolve_data_dir(data_dir, create=True)
    fetched: dict[str, Path] = {}  # url -> temporary file (SML2010's two files share one archive)
    paths = []
    try:
        for f in spec.files:
            target = root / f.stored_name
            if target.exists() and not force:
                if f.sha256 is None:
                    log(f"{target}: already present (no checksum in the registry to check it against)")
                    paths.append(target)
                    continue
                if sha256_of(target) == f.sha256:
                    log(f"{target}: already present, checksum ok")
                    paths.append(target)
                    continue
                log(f"{target}: present but its checksum differs from the registry's; downloading again")
            if f.url is None:
                raise DownloadError(f"{spec.name}: no public source for {f.name} is known; put it in {root}")
            log(f"{spec.name}: downloading {f.url}")
            if f.url not in fetched:
                fetched[f.url] = _fetch(f.url, root, spec, timeout)
            tmp = _extract(fetched[f.url], f.member, root, spec, f.url) if f.member else fetched.pop(f.url)
            try:
                digest = sha256_of(tmp)
                if f.sha256 is not None and digest != f.sha256:
                    raise DownloadError(
                        f"{spec.name}: checksum mismatch for {f.stored_name} from {f.url}: expected "
                        f"sha256 {f.sha256}, got {digest}; the file was not kept"
                    )
                if f.sha256 is None and _looks_like_lfs_pointer(tmp):
                    raise DownloadError(
                        f"{spec.name}: {f.url} returned a Git LFS pointer, not the data; the file was not kept"
                    )
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            if f.sha256 is not None:
                log(f"{target}: sha256 {digest} (verified)")
            else:
                log(f"{target}: sha256 {digest} (unverified: the registry has no checksum for this file)")
            paths.append(target)
    finally:
        for tmp in fetched.values():
            tmp.unlink(missing_ok=True)
    return paths
