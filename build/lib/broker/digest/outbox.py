"""The outbox: one ``.eml`` file per digest under ``<outbox>/<as_of>/``, written atomically.

A file appears whole or not at all (temporary file in the same directory, then rename), so a run killed
mid-write leaves at most a temporary file, which the next build of that night removes. Files are not
fsynced: the database is the record (each digest stores its rendering payload and content hash), and a
file lost to a power cut is rendered again, byte for byte, by the next build or send.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from broker.digest.safe_names import SAFE_NAME, path_within, safe_name

_TEMP = re.compile(r"^\.[a-z0-9-]+\.eml\.[0-9a-f]{16}\.tmp$")


def relative_path(as_of: str, recipient_id: str) -> str:
    """Where a recipient's digest for ``as_of`` lives, relative to the outbox (``YYYY-MM-DD/<safe>.eml``)."""
    return f"{as_of}/{safe_name(recipient_id)}.eml"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(outbox: Path, relative: str, data: bytes) -> Path:
    """Write ``data`` to ``outbox/relative`` all at once; an identical existing file is left alone."""
    path = path_within(outbox, *relative.split("/"))
    if path.is_file() and path.read_bytes() == data:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{sha256(data)[:16]}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)
    return path


def read_if_intact(outbox: Path, relative: str, expected_sha256: str) -> bytes | None:
    """The file's bytes if it exists and has the recorded hash; else ``None`` (missing or altered)."""
    path = path_within(outbox, *relative.split("/"))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if sha256(data) == expected_sha256 else None


def remove_orphans(outbox: Path, as_of: str, keep: Iterable[str]) -> list[str]:
    """Remove digest files and temporary files for ``as_of`` that no committed digest refers to.

    They are left by a run killed between writing a file and committing it, when the database has
    changed before the re-run. Only names this package creates are touched. Returns what was removed.
    """
    directory = path_within(outbox, as_of)
    if not directory.is_dir():
        return []
    wanted = {Path(k).name for k in keep}
    removed = []
    for entry in sorted(directory.iterdir()):
        ours = _TEMP.match(entry.name) or (entry.suffix == ".eml" and SAFE_NAME.match(entry.stem))
        if ours and entry.name not in wanted and entry.is_file():
            entry.unlink()
            removed.append(f"{as_of}/{entry.name}")
    return removed
