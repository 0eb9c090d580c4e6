"""A ``cluster`` cell as officers type it → a configured cluster, with a note saying how it was read.

Officers write cluster names the way the programme's papers do ("Walsall St Matthews", "Wolverhampton"),
not always as ``clusters.csv`` spells them. In order: the configured name (any casing); an alias from
``broker/data/cluster_aliases.csv``; a local authority's name, read as that authority's default cluster;
then a fuzzy match (rapidfuzz) good enough to be a spelling of one name. Anything else is unknown: the
import derives the cluster from the VCSE's authority and says which name it may have meant.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

from rapidfuzz import fuzz, process, utils

from broker.errors import ConfigError
from broker.normalise import geography
from broker.paths import DATA_DIR

ALIASES = DATA_DIR / "cluster_aliases.csv"
# WRatio of 90 or more: a misspelling or a name inside a longer one ("Central Wolverhampton" in
# "Wolverhampton Central"); 60-89 is only worth a "did you mean".
ACCEPT_SCORE = 90
SUGGEST_SCORE = 60


@dataclass(frozen=True)
class ClusterReading:
    """What a ``cluster`` cell was read as: a configured cluster (or None) and a note for the officer."""

    cluster: str | None
    note: str | None = None


@cache
def aliases() -> dict[str, str]:
    """Alias name key → configured cluster name. A row naming an unknown cluster is an error."""
    known = set(geography.cluster_names())
    table: dict[str, str] = {}
    with open(ALIASES, encoding="utf-8-sig", newline="") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            alias, cluster = (row.get("alias") or "").strip(), (row.get("cluster") or "").strip()
            if cluster not in known:
                raise ConfigError(f"{ALIASES.name}: row {number}, field cluster: {cluster!r} is not in clusters.csv")
            if alias:
                table[geography.name_key(alias)] = cluster
    return table


def _choices() -> dict[str, str]:
    """Every spelling a fuzzy match may land on → its cluster (configured names and aliases)."""
    out = {geography.name_key(name): name for name in geography.cluster_names()}
    out.update(aliases())
    return dict(sorted(out.items()))


def read_cluster(text: str) -> ClusterReading:
    """Resolve one ``cluster`` cell (never raises for an unknown name: the note says what happened)."""
    exact = geography.canonical_cluster(text)
    if exact is not None:
        return ClusterReading(exact)
    key = geography.name_key(text)
    shown = text.strip()[:60]
    if key in aliases():
        return ClusterReading(aliases()[key], f"read {shown!r} as cluster {aliases()[key]!r}")
    authority = geography.canonical_local_authority(text)
    if authority is not None:
        default = geography.cluster_for(authority, None)
        if default is not None:
            return ClusterReading(default, f"read {shown!r} as cluster {default!r} (the cluster for {authority})")
    choices = _choices()
    best = process.extractOne(key, list(choices), scorer=fuzz.WRatio, processor=utils.default_process)
    if best is not None and best[1] >= ACCEPT_SCORE:
        cluster = choices[best[0]]
        return ClusterReading(cluster, f"read {shown!r} as cluster {cluster!r}")
    hint = f"did you mean {choices[best[0]]!r}? " if best is not None and best[1] >= SUGGEST_SCORE else ""
    return ClusterReading(None, f"{shown!r} is not a configured cluster ({hint}configured: "
                                f"{', '.join(geography.cluster_names())}); derived from the authority instead")
