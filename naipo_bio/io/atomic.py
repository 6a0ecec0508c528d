"""Atomic writes: every output appears whole under its final name, or not at all.

Content is written under a temporary name in the destination folder (so the
final rename stays on one filesystem) and renamed into place only when complete.
A crash or a killed job leaves at worst a hidden ``.*.tmp-*`` entry, which no
later step reads. The next write of the same output removes such leftovers when
they come from this host and their process no longer exists.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = socket.gethostname().replace("-", "_")


def _temporary_sibling(final: Path) -> Path:
    tag = f"{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return final.with_name(f".{final.name}.tmp-{tag}")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Delete temporaries of ``final`` left by dead processes on this host.

    Temporaries of other hosts (a shared cluster filesystem) are left alone,
    because their process may still be running there.
    """
    removed = []
    for path in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        host, _, rest = path.name.rpartition(".tmp-")[2].partition("-")
        pid = rest.partition("-")[0]
        if host != HOST or not pid.isdigit() or _process_exists(int(pid)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_file(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``final`` when the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = _temporary_sibling(final)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; it replaces ``final`` when the block succeeds.

    An existing ``final`` is moved aside first and deleted after the rename, so
    the final name never points at a half-written folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = _temporary_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if final.exists():
            old = _temporary_sibling(final)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(final: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``final`` atomically."""
    with atomic_file(final) as tmp:
        tmp.write_text(text)
    return Path(final)
