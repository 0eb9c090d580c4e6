"""The inbox the harvester fills: page files written atomically, a resume state, a quarantine.

Layout for source ``cf`` (Find a Tender is the same with ``fts``)::

    DIR/cf-20250101T000000-p0001.json        a release package page, as served (or repaired)
    DIR/.fetch-state-cf.json                 the resume state (windows done, windows failed)
    DIR/.fetch-seen-cf.txt                   "<releases sha256> <file name>" per page written
    DIR/quarantine/cf-...-p0003.body         a page that could not be used, as served
    DIR/quarantine/cf-...-p0003.reason.txt   why

Bookkeeping files have hidden names (a leading dot) and unusable pages sit in ``quarantine/``: an ingest
of the inbox must skip both (note that ``Path.glob("*.json")`` does match hidden names). Temporary files
are hidden too, end in ``.tmp``, and are renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from broker.errors import InputError
from broker.sources.harvest.pages import Page, PageError, parse_page
from broker.sources.harvest.windows import FetchState


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file and a rename, so readers never see
    a half-written file. Raises :class:`InputError` naming the file when the disk refuses."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", file=str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions instead
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk or a read-only inbox: say which file
            raise InputError(f"cannot write: {exc.strerror}", file=str(path)) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Inbox:
    """One source's files in an inbox directory."""

    def __init__(self, directory: Path, source: str) -> None:
        self.directory = directory
        self.source = source
        self.state_path = directory / f".fetch-state-{source}.json"
        self.index_path = directory / f".fetch-seen-{source}.txt"
        self.quarantine_dir = directory / "quarantine"
        self._seen: dict[str, str] | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the inbox: {exc.strerror}", file=str(directory)) from None

    # -- resume state -------------------------------------------------------------------------------

    def load_state(self) -> FetchState | None:
        """The state left by earlier runs, or ``None`` when there is none."""
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            raise InputError("damaged fetch state (not JSON); delete it or run with --restart",
                             file=str(self.state_path)) from None
        return FetchState.from_json(data, file=str(self.state_path))

    def save_state(self, state: FetchState) -> None:
        text = json.dumps(state.to_json(), indent=1, ensure_ascii=False) + "\n"
        write_atomic(self.state_path, text.encode("utf-8"))

    # -- pages --------------------------------------------------------------------------------------

    def page_name(self, label: str, page_no: int) -> str:
        return f"{self.source}-{label}-p{page_no:04d}.json"

    def has(self, digest: str) -> str | None:
        """The file that already holds these releases, if any."""
        return self._seen_index().get(digest)

    def write_page(self, label: str, page_no: int, page: Page) -> Path:
        """Write a page under a free name (a page of the same window and number fetched earlier with
        other releases keeps its file; the new one gets the digest in its name)."""
        self._seen_index()  # load before writing, so the new file is not also picked up by the scan
        path = self.directory / self.page_name(label, page_no)
        if path.exists():
            path = path.with_name(f"{path.stem}-{page.digest[:12]}.json")
        write_atomic(path, page.content)
        self._remember(page.digest, path.name)
        return path

    def _seen_index(self) -> dict[str, str]:
        if self._seen is None:
            self._seen = dict(self._read_index())
            named = set(self._seen.values())
            # Pages present but not indexed (written before a crash, or copied in) are hashed once.
            for path in sorted(self.directory.glob(f"{self.source}-*.json")):
                if path.name not in named:
                    digest = _digest_of(path)
                    if digest is not None and digest not in self._seen:
                        self._remember(digest, path.name)
        return self._seen

    def _read_index(self) -> Iterator[tuple[str, str]]:
        try:
            lines = self.index_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            digest, _, name = line.partition(" ")
            if len(digest) == 64 and name:
                yield digest, name

    def _remember(self, digest: str, name: str) -> None:
        assert self._seen is not None
        self._seen[digest] = name
        with self.index_path.open("a", encoding="utf-8") as fh:
            fh.write(f"{digest} {name}\n")
            fh.flush()
            os.fsync(fh.fileno())

    # -- quarantine ---------------------------------------------------------------------------------

    def quarantine(self, label: str, page_no: int, body: bytes, reason: str) -> Path:
        """Keep an unusable page as served, with a ``.reason.txt`` beside it. Returns the body's path."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{self.source}-{label}-p{page_no:04d}"
        body_path = self.quarantine_dir / f"{stem}.body"
        write_atomic(body_path, body)
        write_atomic(self.quarantine_dir / f"{stem}.reason.txt", (reason.rstrip() + "\n").encode("utf-8"))
        return body_path


def _digest_of(path: Path) -> str | None:
    try:
        return parse_page(path.read_bytes()).digest
    except (OSError, PageError):
        return None
