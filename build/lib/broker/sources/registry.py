"""Format detection and dispatch: the one place that knows which reader handles which format."""

from __future__ import annotations

from collections.abc import Iterator

from broker.sources.base import ProgressCallback, SourceItem

OCDS_FORMATS = ("ocds_release_package", "ocds_record_package", "ocds_release_jsonl", "ocds_release",
                "ocds_record")
PRIVATE_FORMATS = ("private_csv", "private_json", "private_jsonl")


def detect(path: str) -> str:
    """The format of a file (raises InputError for an unknown format)."""
    from broker.sources.detect import detect_format

    return detect_format(path)


def read(path: str, fmt: str, progress: ProgressCallback | None = None) -> Iterator[SourceItem]:
    """Items of a file in a known format, in file order."""
    if fmt in OCDS_FORMATS:
        from broker.sources.ocds import read_ocds

        return read_ocds(path, fmt, progress)
    if fmt == "cf_csv":
        from broker.sources.cf_csv import read_cf_csv

        return read_cf_csv(path, progress)
    if fmt in PRIVATE_FORMATS:
        from broker.sources.private import read_private

        return read_private(path, fmt, progress)
    raise ValueError(f"no reader for format {fmt!r}")
