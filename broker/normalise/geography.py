"""Location: postcodes, region names and NUTS/ITL codes resolved to local authority, ITL and cluster.

Placeholder interface; the reference-data-backed implementation replaces the bodies, not the signatures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    local_authority: str | None = None
    lad_code: str | None = None
    itl_code: str | None = None
    region: str | None = None
    cluster: str | None = None
    nationwide: bool = False
    postcode: str | None = None


def resolve_location(*, postcodes: Iterable[str] = (), region_names: Iterable[str] = (),
                     nuts_codes: Iterable[str] = (), place_names: Iterable[str] = (),
                     nationwide: bool = False) -> Location:
    """Most specific location the evidence allows; nationwide when the notice says so or names no place."""
    pcs = [p for p in postcodes if p and p.strip()]
    return Location(postcode=pcs[0].strip().upper() if pcs else None, nationwide=nationwide)


def cluster_for(local_authority: str | None, postcode: str | None) -> str | None:
    """The configured cluster for an organisation or opportunity, from postcode district then authority."""
    return None


def canonical_local_authority(name: str | None) -> str | None:
    """``Birmingham City Council`` or ``birmingham`` → ``Birmingham``; ``None`` when not recognised."""
    return None
