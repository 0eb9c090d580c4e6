"""Location: postcodes, region names and NUTS/ITL codes resolved to local authority, ITL and cluster.

Reference data are CSV files in ``broker/data`` that an officer may edit (see ``broker/data/README.md``):
``local_authorities.csv`` (every current LAD, its region, combined authority, council org-id, ITL3 for the
West Midlands and name aliases), ``regions.csv`` (regions and nations as Contracts Finder spells them, with
their ITL1/NUTS1 codes), ``postcode_districts.csv`` (hand-compiled district -> authority table for the West
Midlands) and ``clusters.csv`` (the WMCA social economy clusters). Each file is read once and checked; a
broken file raises ``ConfigError`` naming the file, row and field.

NUTS (2016) and ITL (2021) codes differ only in their prefix (``UKG31`` = ``TLG31``), and none changed in
the West Midlands (research/ocds-sources.md, section 4.2); this module reports ITL codes.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from broker.errors import ConfigError
from broker.paths import DATA_DIR

WMCA_CODE = "E47000007"  # West Midlands Combined Authority (CAUTH), research/ocds-sources.md 4.2
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
_SECTOR = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ([0-9])$")
_NUTS = re.compile(r"^(?:UK|TL)([C-N]|Z)?([0-9A-Z]{0,3})$")
_APOSTROPHES = re.compile(r"['\u2019.]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
# Decorations around an authority's name in buyer names ("London Borough of X", "X Borough Council").
_PREFIXES = ("the ", "london borough of ", "royal borough of ", "borough council of ", "city and county of ",
             "metropolitan borough of ", "borough of ", "city of ", "county of ", "council of the ")
_SUFFIXES = (" metropolitan borough council", " metropolitan district council", " county borough council",
             " borough council", " district council", " city council", " county council", " council",
             " mbc", " cc", " dc", " bc")
_SEPARATORS = re.compile(r"\s+[-\u2013]\s+|[(,;/]")


@dataclass(frozen=True)
class Location:
    """Where an opportunity or organisation is, as specifically as the evidence allows.

    ``nationwide`` means the place is not limited to one region (the notice says so, names a pseudo-region
    such as "Any region" or "England", or names several regions, listed in ``regions``). ``itl_code`` is
    the most specific ITL code known (ITL3 ``TLG31``, ITL2 ``TLG3`` or ITL1 ``TLG``).
    """

    local_authority: str | None = None
    lad_code: str | None = None
    itl_code: str | None = None
    region: str | None = None
    cluster: str | None = None
    nationwide: bool = False
    postcode: str | None = None
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Authority:
    """One current local authority district (a row of ``local_authorities.csv``)."""

    name: str
    lad_code: str
    region: str
    country: str
    county: str | None = None
    combined_authority_code: str | None = None
    combined_authority: str | None = None
    org_id: str | None = None
    itl3: str | None = None
    former_codes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def in_wmca(self) -> bool:
        return self.combined_authority_code == WMCA_CODE


@dataclass(frozen=True)
class Region:
    """A region, nation or pseudo-region (a row of ``regions.csv``)."""

    name: str
    kind: str  # region | nation | nationwide | outside_uk
    itl1: str | None = None
    nuts1: str | None = None
    gss_code: str | None = None
    postcode_areas: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """A social economy cluster (a row of ``clusters.csv``)."""

    name: str
    local_authority: str
    authority_default: bool
    postcode_districts: tuple[str, ...] = ()
    neighbours: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class PostcodeDistrict:
    """A postcode district (or sector, ``WS10 8``) and the authority most of it lies in."""

    district: str
    local_authority: str
    note: str = ""


# ---------------------------------------------------------------------------------------------- text keys

def name_key(text: object) -> str:
    """A loose key for names: ASCII-folded, lower case, ``&`` as ``and``, punctuation dropped."""
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    folded = _APOSTROPHES.sub("", folded.replace("&", " and "))
    return " ".join(_NON_ALNUM.sub(" ", folded).split())


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(";") if p.strip())


# ---------------------------------------------------------------------------------------------- loading

def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a reference CSV with their spreadsheet row numbers; missing columns are a ConfigError."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or ())]
            if missing:
                raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
            for number, row in enumerate(reader, start=2):
                yield number, {k: (v or "").strip() for k, v in row.items() if k is not None}
    except OSError as exc:
        raise ConfigError(f"cannot read reference data {path}: {exc.strerror}") from None


def load_authorities(path: Path) -> tuple[Authority, ...]:
    """Read ``local_authorities.csv``; names and codes must be unique."""
    out: list[Authority] = []
    seen: set[str] = set()
    for number, row in _rows(path, ("name", "lad_code", "region", "country")):
        if not row["name"] or not row["lad_code"]:
            raise ConfigError(f"{path}: row {number}: name and lad_code are required")
        if row["name"] in seen or row["lad_code"] in seen:
            raise ConfigError(f"{path}: row {number}: duplicate authority {row['name']} {row['lad_code']}")
        seen.update((row["name"], row["lad_code"]))
        out.append(Authority(
            name=row["name"], lad_code=row["lad_code"], region=row["region"], country=row["country"],
            county=row.get("county") or None, combined_authority_code=row.get("combined_authority_code") or None,
            combined_authority=row.get("combined_authority") or None, org_id=row.get("org_id") or None,
            itl3=(row.get("itl3") or "").upper() or None, former_codes=_split(row.get("former_codes", "")),
            aliases=_split(row.get("aliases", ""))))
    return tuple(out)


def load_regions(path: Path) -> tuple[Region, ...]:
    """Read ``regions.csv``."""
    out = []
    for number, row in _rows(path, ("region", "kind")):
        if row["kind"] not in ("region", "nation", "nationwide", "outside_uk"):
            raise ConfigError(f"{path}: row {number}, field kind: unknown kind {row['kind']!r}")
        out.append(Region(name=row["region"], kind=row["kind"], itl1=row.get("itl1") or None,
                          nuts1=row.get("nuts1") or None, gss_code=row.get("gss_code") or None,
                          postcode_areas=tuple(a.upper() for a in _split(row.get("postcode_areas", ""))),
                          aliases=_split(row.get("aliases", ""))))
    return tuple(out)


def load_postcode_districts(path: Path, known: Iterable[str]) -> dict[str, PostcodeDistrict]:
    """Read ``postcode_districts.csv``; every authority must be a canonical name in ``known``."""
    names = set(known)
    out: dict[str, PostcodeDistrict] = {}
    for number, row in _rows(path, ("district", "local_authority")):
        district = " ".join(row["district"].upper().split())
        if not (_DISTRICT.match(district) or _SECTOR.match(district)):
            raise ConfigError(f"{path}: row {number}, field district: not a postcode district {district!r}")
        if row["local_authority"] not in names:
            raise ConfigError(f"{path}: row {number}, field local_authority: unknown authority "
                              f"{row['local_authority']!r} (use the name in local_authorities.csv)")
        if district in out:
            raise ConfigError(f"{path}: row {number}: district {district} is listed twice")
        out[district] = PostcodeDistrict(district, row["local_authority"], row.get("note", ""))
    return out


def load_clusters(path: Path, known: Iterable[str]) -> tuple[Cluster, ...]:
    """Read ``clusters.csv``; neighbour lists are made symmetric (naming one side is enough)."""
    names = set(known)
    raw: list[Cluster] = []
    for number, row in _rows(path, ("cluster", "local_authority", "postcode_districts", "neighbours")):
        where = f"{path}: row {number}"
        if row["local_authority"] not in names:
            raise ConfigError(f"{where}, field local_authority: unknown authority {row['local_authority']!r}")
        districts = tuple(" ".join(d.upper().split()) for d in _split(row["postcode_districts"]))
        bad = [d for d in districts if not (_DISTRICT.match(d) or _SECTOR.match(d))]
        if bad:
            raise ConfigError(f"{where}, field postcode_districts: not postcode districts {bad}")
        raw.append(Cluster(row["cluster"], row["local_authority"], _yes(row.get("authority_default", "")),
                           districts, _split(row["neighbours"]), row.get("note", "")))
    return _check_clusters(path, raw)


def _yes(value: str) -> bool:
    return value.strip().lower() in ("yes", "y", "true", "1")


def _check_clusters(path: Path, raw: list[Cluster]) -> tuple[Cluster, ...]:
    by_name = {c.name: c for c in raw}
    if len(by_name) != len(raw) or "" in by_name:
        raise ConfigError(f"{path}: cluster names must be present and unique")
    defaults = [c.local_authority for c in raw if c.authority_default]
    districts = [d for c in raw for d in c.postcode_districts]
    if len(set(defaults)) != len(defaults) or len(set(districts)) != len(districts):
        raise ConfigError(f"{path}: an authority has two default clusters, or a district is in two clusters")
    for c in raw:
        unknown = [n for n in c.neighbours if n not in by_name]
        if unknown:
            raise ConfigError(f"{path}: cluster {c.name}, field neighbours: unknown cluster(s) {unknown}")
    out = []
    for c in raw:
        extra = [o.name for o in raw if c.name in o.neighbours and o.name not in c.neighbours]
        out.append(Cluster(c.name, c.local_authority, c.authority_default,
                           c.postcode_districts, c.neighbours + tuple(extra), c.note))
    return tuple(out)


@cache
def authorities() -> tuple[Authority, ...]:
    """Every authority in ``local_authorities.csv``, in file order."""
    return load_authorities(DATA_DIR / "local_authorities.csv")


@cache
def regions() -> tuple[Region, ...]:
    return load_regions(DATA_DIR / "regions.csv")


@cache
def postcode_districts() -> dict[str, PostcodeDistrict]:
    return load_postcode_districts(DATA_DIR / "postcode_districts.csv", (a.name for a in authorities()))


@cache
def clusters() -> tuple[Cluster, ...]:
    """The configured clusters, in file order."""
    return load_clusters(DATA_DIR / "clusters.csv", (a.name for a in authorities()))


@cache
def _authority_index() -> dict[str, Authority]:
    """Name, alias, LAD code, former code and org-id keys -> authority. A key naming two is an error."""
    index: dict[str, Authority] = {}
    for a in authorities():
        for label in (a.name, a.lad_code, a.org_id or "", *a.former_codes, *a.aliases):
            key = name_key(label)
            if not key:
                continue
            if key in index and index[key].name != a.name:
                raise ConfigError(f"local_authorities.csv: {label!r} names both {index[key].name} and {a.name}")
            index[key] = a
    return index


@cache
def _region_index() -> dict[str, Region]:
    index: dict[str, Region] = {}
    for r in regions():
        for label in (r.name, *r.aliases):
            index[name_key(label)] = r
    return index


@cache
def _county_regions() -> dict[str, str]:
    """Two-tier county name ("Staffordshire") -> its region."""
    return {name_key(a.county): a.region for a in authorities() if a.county}


# ---------------------------------------------------------------------------------------------- lookups

def canonical_local_authority(name: str | None) -> str | None:
    """``Birmingham City Council`` or ``birmingham`` → ``Birmingham``; ``None`` when not recognised.

    Also accepts LAD codes (``E08000025``), council org-ids (``GB-LAE-BIR``), former district names
    (``Aylesbury Vale`` → ``Buckinghamshire``) and the usual decorations ("London Borough of …",
    "… Metropolitan Borough Council", "… - Children's Services").
    """
    found = authority(name)
    return found.name if found else None


def authority(name: str | None) -> Authority | None:
    """The :class:`Authority` a name, alias or code refers to, or ``None``."""
    if not name or not str(name).strip():
        return None
    index = _authority_index()
    text = str(name)[:300]
    for part in (text, _SEPARATORS.split(text, maxsplit=1)[0]):
        for key in _decorated_keys(name_key(part)):
            if key in index:
                return index[key]
    return None


def _decorated_keys(key: str) -> Iterator[str]:
    """The key, then the key with a council suffix removed, then with a prefix removed too."""
    yield key
    for suffix in _SUFFIXES:
        if key.endswith(suffix):
            key = key[: -len(suffix)]
            yield key
            break
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            yield key[len(prefix):]
            break


def authority_by_lad(code: str | None) -> Authority | None:
    """The authority with this LAD code (current or former), or ``None``."""
    found = _authority_index().get(name_key(code or ""))
    return found if found and code and code.strip().upper() in (found.lad_code, *found.former_codes) else None


def is_wmca_constituent(local_authority: str | None) -> bool:
    """True for the seven WMCA constituent authorities (Birmingham … Wolverhampton)."""
    found = authority(local_authority)
    return bool(found and found.in_wmca)


def is_west_midlands(location: Location | str | None) -> bool:
    """True when a Location, authority name or region name lies in the West Midlands region (ITL1 TLG)."""
    if isinstance(location, Location):
        return location.region == "West Midlands"
    found = authority(location)
    return (found.region if found else canonical_region(location)) == "West Midlands"


def canonical_region(name: str | None) -> str | None:
    """``yorkshire and the humber`` → ``Yorkshire and The Humber``; pseudo-regions → ``United Kingdom``."""
    found = region(name)
    return found.name if found else None


def region(name: str | None) -> Region | None:
    """The :class:`Region` row a name or alias refers to, or ``None``."""
    return _region_index().get(name_key(name or "")) if name else None


def normalise_postcode(value: str | None) -> str | None:
    """``b152tt`` or ``B15  2TT`` → ``B15 2TT``; ``None`` for text that is not a full UK postcode."""
    if not value:
        return None
    m = _POSTCODE.match("".join(str(value).upper().split()))
    return f"{m[1]} {m[2]}" if m else None


def postcode_district(value: str | None) -> str | None:
    """The outward code (``B15``) of a full postcode or of a district given on its own."""
    if not value:
        return None
    full = normalise_postcode(value)
    if full:
        return full.split(" ")[0]
    text = "".join(str(value).upper().split())
    return text if _DISTRICT.match(text) else None


def postcode_area(value: str | None) -> str | None:
    """The area letters (``WV``) of a postcode or district."""
    district = postcode_district(value)
    m = re.match(r"[A-Z]+", district or "")
    return m[0] if m else None


def local_authority_for_postcode(value: str | None) -> str | None:
    """The authority for a postcode from ``postcode_districts.csv`` (sector row first, then district)."""
    table = postcode_districts()
    full = normalise_postcode(value)
    if full:
        sector = full[:-2]
        if sector in table:
            return table[sector].local_authority
    district = postcode_district(value)
    row = table.get(district) if district else None
    return row.local_authority if row else None


def region_for_postcode_area(value: str | None) -> str | None:
    """The region most of a postcode area lies in (``regions.csv`` ``postcode_areas``), or ``None``."""
    area = postcode_area(value)
    for r in regions():
        if area and area in r.postcode_areas:
            return r.name
    return None


# ---------------------------------------------------------------------------------------------- clusters

def cluster_names() -> tuple[str, ...]:
    return tuple(c.name for c in clusters())


def canonical_cluster(name: str | None) -> str | None:
    """A configured cluster's exact name from any casing/spacing of it, else ``None``."""
    key = name_key(name or "")
    return next((c.name for c in clusters() if key and name_key(c.name) == key), None)


def neighbouring_clusters(cluster: str | None) -> tuple[str, ...]:
    """Clusters next to this one (for consortia across neighbouring clusters); ``()`` if unknown."""
    name = canonical_cluster(cluster)
    return next((c.neighbours for c in clusters() if c.name == name), ())


def cluster_for(local_authority: str | None, postcode: str | None) -> str | None:
    """The configured cluster for an organisation or opportunity, from postcode district then authority.

    A district listed by a cluster wins when it agrees with the authority (a Sandwell organisation with a
    B42 postcode is not put in Birmingham's Perry Barr cluster); otherwise the authority's default cluster.
    """
    la = canonical_local_authority(local_authority) or local_authority_for_postcode(postcode)
    full = normalise_postcode(postcode)
    keys = ([full[:-2]] if full else []) + [postcode_district(postcode)]
    for c in clusters():
        if any(k in c.postcode_districts for k in keys if k) and (la is None or la == c.local_authority):
            return c.name
    return next((c.name for c in clusters() if c.authority_default and c.local_authority == la), None)


# ---------------------------------------------------------------------------------------------- resolution

@dataclass
class _Evidence:
    regions: list[str] = field(default_factory=list)
    itl: list[str] = field(default_factory=list)
    candidates: list[tuple[Authority, str | None]] = field(default_factory=list)
    wide: bool = False

    def add_region(self, name: str) -> None:
        if name not in self.regions:
            self.regions.append(name)


def resolve_location(*, postcodes: Iterable[str] = (), region_names: Iterable[str] = (),
                     nuts_codes: Iterable[str] = (), place_names: Iterable[str] = (),
                     nationwide: bool = False) -> Location:
    """Most specific location the evidence allows.

    Postcodes (``postcode_districts.csv``) and place names give an authority; NUTS/ITL codes give ITL3 (and
    the authority where one ITL3 is one authority, e.g. ``UKG31`` Birmingham), ITL2 or a region; region
    names give a region. An authority is used only when it agrees with the regions and ITL codes named, so
    a buyer's postcode never overrides a delivery region elsewhere. "Any region", "England" or "United
    Kingdom" make the location ``nationwide``; several named regions are listed in ``regions`` instead. With no evidence the result is empty
    (``nationwide`` only if the caller says so). Never raises on odd text: unrecognised values are ignored.
    """
    ev = _Evidence(wide=nationwide)
    valid_postcodes = [p for p in (normalise_postcode(x) for x in _texts(postcodes)) if p]
    for name in _texts(region_names):
        for part in name.split(","):  # Contracts Finder CSV joins regions with commas
            _add_place(ev, part, region_first=True)
    for code in _texts(nuts_codes):
        _add_nuts(ev, code)
    for place in _texts(place_names):
        _add_place(ev, place)
    postcode_candidates = [(a, p) for a, p in ((authority(local_authority_for_postcode(p)), p)
                                               for p in valid_postcodes) if a]
    ev.candidates[:0] = postcode_candidates
    return _build(ev, valid_postcodes)


def _texts(values: Iterable[object] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [str(v).strip()[:300] for v in values if v is not None and str(v).strip()]


def _add_place(ev: _Evidence, text: str, *, region_first: bool = False) -> None:
    """A region name, an authority or a two-tier county ("Staffordshire"), in that order or authority first."""
    found_region, found_authority = region(text), authority(text)
    if found_authority is not None and not (region_first and found_region):
        ev.candidates.append((found_authority, None))
    elif found_region is not None:
        if found_region.kind == "nationwide":
            ev.wide = True
        else:
            ev.add_region(found_region.name)
    else:
        county = next((k for k in _decorated_keys(name_key(text)) if k in _county_regions()), None)
        if county:
            ev.add_region(_county_regions()[county])


def _add_nuts(ev: _Evidence, text: str) -> None:
    m = _NUTS.match("".join(text.upper().split()))
    if not m:
        return
    letter, rest = m[1], m[2]
    if letter is None and not rest:
        ev.wide = True  # "UK" / "TL": the whole country
        return
    if letter in (None, "Z"):
        return  # extra-regio or malformed
    itl = f"TL{letter}{rest}"
    found = next((r for r in regions() if r.itl1 == f"TL{letter}"), None)
    if found is not None:
        ev.add_region(found.name)
    if rest and itl not in ev.itl:
        ev.itl.append(itl)
    if len(rest) >= 2:
        matches = [a for a in authorities() if a.itl3 == itl]
        if len(matches) == 1:
            ev.candidates.append((matches[0], None))


def _consistent(ev: _Evidence, a: Authority) -> bool:
    if ev.regions and a.region not in ev.regions:
        return False
    return not (a.itl3 and ev.itl and not any(a.itl3.startswith(code) for code in ev.itl))


def _build(ev: _Evidence, valid_postcodes: list[str]) -> Location:
    wide = ev.wide  # several named regions are not the whole country: `regions` lists them
    chosen = next(((a, p) for a, p in ev.candidates if _consistent(ev, a)), None)
    postcode = chosen[1] if chosen and chosen[1] else (valid_postcodes[0] if valid_postcodes else None)
    if chosen is not None:
        a = chosen[0]
        itl = a.itl3 or _region_itl(a.region)
        return Location(local_authority=a.name, lad_code=a.lad_code, itl_code=itl, region=a.region,
                        cluster=cluster_for(a.name, postcode), nationwide=wide, postcode=postcode,
                        regions=tuple(ev.regions) or (a.region,))
    if not ev.regions and postcode:
        area_region = region_for_postcode_area(postcode)
        if area_region:
            ev.add_region(area_region)
    if len(ev.regions) != 1:
        return Location(nationwide=wide, postcode=postcode, regions=tuple(ev.regions))
    specific = sorted(ev.itl, key=len, reverse=True)
    itl = specific[0] if specific and all(specific[0].startswith(c) for c in specific) else None
    return Location(itl_code=itl or _region_itl(ev.regions[0]), region=ev.regions[0], nationwide=wide,
                    postcode=postcode, regions=tuple(ev.regions))


def _region_itl(name: str) -> str | None:
    return next((r.itl1 for r in regions() if r.name == name), None)
