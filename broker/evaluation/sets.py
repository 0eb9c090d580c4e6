"""A labelled set on disk: notices, VCSE profiles, graded (profile, notice) pairs and tune/test splits.

Each set is a folder with a ``set.json`` manifest naming its files (paths relative to the folder) and the
business date it is evaluated on: either one ``as_of`` for all its ``notices``, or ``groups``, a list of
``{"as_of": ..., "notices": [...]}``, for a set whose files were published years apart. A group's date is a
day on which its notices were published and still open; the evaluation runs the matcher once per group. Grades name a notice either by the broker's opportunity id
(``opportunity_id`` column) or, for Contracts Finder CSV exports, by the pair (``buyer``,
``notice_identifier``), which is how that export identifies a notice. An optional ``methods`` column
records which retrieval methods pooled the pair (``;``-separated).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from broker.errors import InputError
from broker.normalise.cf_csv import cf_record_id

MANIFEST = "set.json"
SPLITS = ("tune", "test")


@dataclass(frozen=True)
class NoticeGroup:
    """Notice files evaluated together, as of one business date."""

    as_of: date
    files: tuple[Path, ...]


@dataclass(frozen=True)
class LabelledSet:
    """One labelled set, read from its folder.

    Attributes:
        name: short name used in reports (``cf2020``, ``mixed``).
        folder: the set's folder.
        as_of: the latest group date (the only one for a one-date set): every notice is public by then.
        notice_files: files to ingest, in order (every group's).
        profile_files: directory files (officers' ``vcses.csv`` format) to import.
        grades: {profile id: {opportunity id: grade 0/1/2}}.
        methods: {(profile id, opportunity id): methods that pooled the pair}.
        splits: {profile id: ``tune`` or ``test``}.
    """

    name: str
    folder: Path
    as_of: date
    notice_files: tuple[Path, ...]
    profile_files: tuple[Path, ...]
    grades: dict[str, dict[str, int]]
    splits: dict[str, str]
    methods: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    groups: tuple[NoticeGroup, ...] = ()

    def notice_groups(self) -> tuple[NoticeGroup, ...]:
        """The groups to evaluate: the manifest's, or all files as of ``as_of``."""
        return self.groups or (NoticeGroup(self.as_of, self.notice_files),)

    def profiles_in(self, split: str) -> list[str]:
        """Graded profiles of ``split`` (``all`` for every split), in id order."""
        return sorted(p for p in self.grades if split == "all" or self.splits.get(p) == split)

    def has_relevant(self, profile: str) -> bool:
        return any(g >= 1 for g in self.grades.get(profile, {}).values())


def _manifest(folder: Path) -> dict[str, object]:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no labelled-set manifest here; a set folder needs a {MANIFEST} "
                         "(see fixtures/labelled/README.md).", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, line {exc.lineno}); fix the manifest.", file=str(path)) from None
    for key in ("name", "profiles", "grades"):
        if key not in data:
            raise InputError(f"the manifest has no {key!r}; add it.", file=str(path), field=key)
    if "groups" in data:
        if "as_of" in data or "notices" in data:
            raise InputError("give either 'groups' or 'as_of' and 'notices', not both.", file=str(path),
                             field="groups")
    else:
        for key in ("as_of", "notices"):
            if key not in data:
                raise InputError(f"the manifest has no {key!r} (nor 'groups'); add it.", file=str(path), field=key)
    return data


def _groups(meta: dict[str, object], folder: Path) -> tuple[NoticeGroup, ...]:
    path = str(folder / MANIFEST)
    raw = meta.get("groups", [{"as_of": meta.get("as_of"), "notices": meta.get("notices")}])
    if not isinstance(raw, list) or not raw:
        raise InputError("'groups' must be a non-empty list of {\"as_of\", \"notices\"}.", file=path, field="groups")
    out, seen = [], set()
    for i, group in enumerate(raw, start=1):
        where = f"group {i}"
        if not isinstance(group, dict) or not group.get("notices") or not isinstance(group["notices"], list):
            raise InputError("a group needs 'as_of' and a non-empty 'notices' list.", file=path, locator=where,
                             field="notices")
        try:
            as_of = date.fromisoformat(str(group.get("as_of")))
        except ValueError:
            raise InputError(f"as_of must be a date as YYYY-MM-DD, got {group.get('as_of')!r}.", file=path,
                             locator=where, field="as_of") from None
        files = tuple(folder / str(p) for p in group["notices"])
        twice = sorted(str(f) for f in files if f in seen)
        if twice:
            # a file in two groups would be scored twice, on two dates
            raise InputError(f"{twice[0]} is in more than one group; name each file once.", file=path,
                             locator=where, field="notices")
        seen.update(files)
        out.append(NoticeGroup(as_of, files))
    return tuple(out)


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        raise InputError("this file, named in the labelled-set manifest, is missing.", file=str(path)) from None


def _notice_id(row: dict[str, str], path: Path, line: int) -> str:
    if row.get("opportunity_id"):
        return row["opportunity_id"]
    if row.get("buyer") and row.get("notice_identifier"):
        return cf_record_id(row["buyer"], row["notice_identifier"])
    raise InputError("a grade needs opportunity_id, or buyer and notice_identifier.",
                     file=str(path), locator=f"line {line}", field="opportunity_id")


def load_set(folder: Path | str) -> LabelledSet:
    """Read a labelled set from its folder.

    Raises:
        InputError: a missing manifest or file, or a grade that is not 0, 1 or 2.
    """
    folder = Path(folder)
    meta = _manifest(folder)
    splits: dict[str, str] = {}
    for row in _rows(folder / "splits.csv"):
        splits[row["profile_id"]] = row["split"]
    grades: dict[str, dict[str, int]] = {}
    methods: dict[tuple[str, str], tuple[str, ...]] = {}
    for name in meta["grades"]:  # type: ignore[attr-defined]
        path = folder / name
        for line, row in enumerate(_rows(path), start=2):
            oid = _notice_id(row, path, line)
            if row.get("grade") not in ("0", "1", "2"):
                raise InputError(f"grade must be 0, 1 or 2, got {row.get('grade')!r}.",
                                 file=str(path), locator=f"line {line}", field="grade")
            grades.setdefault(row["profile_id"], {})[oid] = int(row["grade"])
            if row.get("methods"):
                methods[(row["profile_id"], oid)] = tuple(m for m in row["methods"].split(";") if m)
    groups = _groups(meta, folder)
    return LabelledSet(
        name=str(meta["name"]), folder=folder, as_of=max(g.as_of for g in groups),
        notice_files=tuple(f for g in groups for f in g.files),
        profile_files=tuple(folder / p for p in meta["profiles"]),  # type: ignore[attr-defined]
        grades=grades, splits=splits, methods=methods, groups=groups if "groups" in meta else ())
