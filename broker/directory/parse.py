"""One spreadsheet row of ``vcses.csv`` or ``consortia.csv`` → a normalised record, or the row's errors.

The columns are a contract with the officers (BRIEF.md, "Input formats"). Every field of a row is checked
and every problem reported, so one pass through the file shows everything to fix. A normalised record is
a plain dict whose canonical hash is the stored ``content_hash``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from broker.directory.clusters import read_cluster
from broker.errors import InputError
from broker.normalise import geography
from broker.normalise.cpv import catalogue
from broker.normalise.money import gbp_to_pence
from broker.normalise.text import clean_text, one_line

VCSE_COLUMNS = ("id", "name", "legal_form", "charity_number", "company_number", "cluster", "local_authority",
                "postcode", "service_areas", "capabilities", "keywords", "exclude_keywords", "cpv_codes",
                "annual_turnover_gbp", "employees", "min_contract_value_gbp", "max_contract_value_gbp",
                "certifications", "contact_email", "digest_opt_in")
VCSE_REQUIRED = ("id", "name", "capabilities", "local_authority", "digest_opt_in")
CONSORTIUM_COLUMNS = ("id", "name", "lead_id", "member_ids", "capabilities", "max_contract_value_gbp")
CONSORTIUM_REQUIRED = ("id", "name", "lead_id", "member_ids")

NATIONAL = "National"
# Ids become keys, URLs and file names later: letters, digits and . _ - only (no path tricks).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Loose on purpose: one address, no spaces or header-injection characters, a dotted domain.
_EMAIL = re.compile(r"^[^@\s<>,;:\"()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
# Companies House: 8 digits, or a 2-letter register prefix and 6 digits (SC, NI, OC... and the societies'
# IP, SP, RS, NP...), or R and 7 digits (old Northern Ireland numbers).
_COMPANY = re.compile(r"^(?:[A-Z]{2}\d{6}|\d{8}|R\d{7})$")
# The FCA mutuals register (co-operative and community benefit societies): digits then R, "IP" before
# the digits in older entries ("12345R", "IP29007R").
_FCA_SOCIETY = re.compile(r"^(?:IP)?\d{1,6}R$")
_SOCIETY_FORMS = frozenset({"CBS", "Co-operative"})
_COMPANY_FORMS = frozenset({"CIC", "CLG", "Charitable company"})
_CHARITY = re.compile(r"^(?:[A-Z]{1,3})?\d{5,8}(?:-\d{1,2})?$")
_CPV_SPLIT = re.compile(r"[;,\s]+")
_TRUE = frozenset({"yes", "y", "true", "1"})
_FALSE = frozenset({"no", "n", "false", "0"})
# Money above a billion pounds is a typing slip in a VCSE directory (and would overflow later sums).
MAX_PENCE = 100_000_000_000
_LEGAL_FORMS = {
    "charity": "Charity", "registered charity": "Charity", "unincorporated charity": "Charity",
    "cio": "CIO", "charitable incorporated organisation": "CIO",
    "cic": "CIC", "community interest company": "CIC",
    "cbs": "CBS", "community benefit society": "CBS", "bencom": "CBS",
    "co-op": "Co-operative", "coop": "Co-operative", "co-operative": "Co-operative",
    "cooperative": "Co-operative", "co-operative society": "Co-operative",
    "clg": "CLG", "company limited by guarantee": "CLG", "charitable company": "Charitable company",
    "community group": "Community group", "unincorporated association": "Unincorporated association",
}


class RowCheck:
    """Collects the errors and warnings of one row while its fields are normalised."""

    def __init__(self, file: str, number: int, row: dict[str, str]) -> None:
        self.file, self.locator, self.row = file, f"row {number}", row
        self.errors: list[InputError] = []
        self.warnings: list[InputError] = []

    def raw(self, column: str) -> str:
        return (self.row.get(column) or "").strip()

    def error(self, column: str | None, reason: str) -> None:
        self.errors.append(InputError(reason, file=self.file, locator=self.locator, field=column))

    def warn(self, column: str | None, reason: str) -> None:
        self.warnings.append(InputError(reason, file=self.file, locator=self.locator, field=column))

    def field(self, column: str, parse: Callable[[str], Any], *, required: bool = False) -> Any:
        """Parse a cell; blank is ``None`` (an error when required).

        A ``ValueError`` refuses the row when the field is required; in an optional field it is a warning
        and the field is dropped, so one mistyped number never takes a VCSE out of matching.
        """
        text = self.raw(column)
        if not text:
            if required:
                self.error(column, "required, but blank")
            return None
        try:
            return parse(text)
        except ValueError as exc:
            if required:
                self.error(column, str(exc))
            else:
                self.warn(column, f"{exc}; left out (the row is kept without it)")
            return None


# ---------------------------------------------------------------------------------------------- field parsers

def split_list(text: str) -> list[str]:
    """``a; b;;a`` → ``["a", "b"]``: semicolon-separated, cleaned, first spelling of duplicates kept."""
    out: list[str] = []
    seen: set[str] = set()
    for part in text.split(";"):
        item = one_line(part)
        if item and item.casefold() not in seen:
            seen.add(item.casefold())
            out.append(item)
    return out


def parse_id(text: str) -> str:
    if not _ID.match(text):
        raise ValueError(f"{text[:40]!r} is not a usable id: use up to 100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return text


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text[:20]!r} is not yes or no")


def parse_pence(text: str) -> int:
    """A GBP amount typed by an officer (``£250,000``) as pence."""
    try:
        pence = gbp_to_pence(text)
    except (ValueError, ArithmeticError):  # ArithmeticError: gbp_to_pence cannot quantize "1e30"
        raise ValueError(f"{text[:30]!r} is not an amount in pounds") from None
    if pence is None or pence > MAX_PENCE:
        raise ValueError(f"{text[:30]!r} is not a plausible amount in pounds")
    return pence


def parse_count(text: str) -> int:
    digits = text.replace(",", "").strip()
    if not digits.isdigit() or len(digits) > 7:
        raise ValueError(f"{text[:20]!r} is not a whole number")
    return int(digits)


def parse_email(text: str) -> str:
    if len(text) > 254 or not _EMAIL.match(text):
        raise ValueError(f"{text[:60]!r} is not one email address")
    return text


def parse_postcode(text: str) -> str:
    postcode = geography.normalise_postcode(text)
    if postcode is None:
        raise ValueError(f"{text[:20]!r} is not a full UK postcode")
    return postcode


def parse_company_number(text: str) -> str:
    """Companies House or FCA society number; spreadsheets drop leading zeros, so short digit runs are padded."""
    value = text.replace(" ", "").upper()
    if value.isdigit():
        value = value.rjust(8, "0")
    if not (_COMPANY.match(value) or _FCA_SOCIETY.match(value)):
        raise ValueError(f"{text[:20]!r} is not a Companies House number (8 digits, or 2 letters and 6 digits "
                         "such as RS001234) nor an FCA society number (such as 12345R)")
    return value


def parse_charity_number(text: str) -> str:
    value = text.replace(" ", "").upper()
    if not _CHARITY.match(value):
        raise ValueError(f"{text[:20]!r} is not a charity number (e.g. 1234567, SC012345)")
    return value


def parse_legal_form(text: str) -> str:
    """Common spellings become one label (``community interest company`` → ``CIC``); others kept as typed."""
    value = one_line(text)
    return _LEGAL_FORMS.get(value.lower().rstrip("."), value)


def parse_local_authority(text: str) -> str:
    name = geography.canonical_local_authority(text)
    if name is None:
        raise ValueError(f"{text[:60]!r} is not a local authority in broker/data/local_authorities.csv")
    return name


def parse_cluster(text: str) -> str:
    """A configured cluster's exact name (no aliases or fuzzy reading: see ``clusters.read_cluster``)."""
    name = geography.canonical_cluster(text)
    if name is None:
        raise ValueError(f"{text[:60]!r} is not a configured cluster (configured: "
                         f"{', '.join(geography.cluster_names())}); leave it blank to derive it")
    return name


def parse_service_areas(text: str) -> list[str]:
    """Authorities, regions (``West Midlands``) or ``National``, canonicalised; unknown names are errors."""
    out, unknown = read_service_areas(text)
    if unknown:
        raise ValueError(f"not a local authority, region or 'National': {', '.join(unknown)}")
    return out


def read_service_areas(text: str) -> tuple[list[str], list[str]]:
    """(the areas understood, the names not understood). A two-tier county ("Warwickshire") is its districts."""
    out: list[str] = []
    unknown: list[str] = []
    for item in split_list(text):
        region = geography.region(item)
        if region is not None and region.kind == "nationwide":
            names = [NATIONAL]
        elif region is not None:
            names = [region.name]
        else:
            authority = geography.canonical_local_authority(item)
            key = geography.name_key(item.removesuffix(" County Council").removesuffix(" County"))
            names = [authority] if authority else sorted(
                a.name for a in geography.authorities() if a.county and geography.name_key(a.county) == key)
        if not names:
            unknown.append(item)
        out.extend(n for n in names if n not in out)
    return out, unknown


def parse_cpv(text: str) -> list[str]:
    """8-digit CPV 2008 codes, with or without the check digit (``85311000-2``); unknown codes are errors."""
    parts = [p for p in _CPV_SPLIT.split(text) if p]
    known, unknown = catalogue().split(parts)
    if unknown:
        raise ValueError(f"not CPV 2008 code(s): {', '.join(u[:20] for u in unknown[:5])}")
    return list(known)


def parse_name(text: str) -> str:
    name = one_line(text)
    if not name or len(name) > 300:
        raise ValueError("a name must have 1 to 300 characters")
    return name


def parse_capabilities(text: str) -> str:
    value = clean_text(text)
    if not value:
        raise ValueError("required, but blank")
    return value


# ---------------------------------------------------------------------------------------------- rows

def parse_vcse_row(file: str, number: int, row: dict[str, str]) -> tuple[dict[str, Any] | None, RowCheck]:
    """A ``vcses.csv`` row as the normalised VCSE record (``None`` when the row has errors)."""
    check = RowCheck(file, number, row)
    rec: dict[str, Any] = {
        "id": check.field("id", parse_id, required=True),
        "name": check.field("name", parse_name, required=True),
        "legal_form": check.field("legal_form", parse_legal_form),
        "charity_number": check.field("charity_number", parse_charity_number),
        "company_number": check.field("company_number", parse_company_number),
        "local_authority": check.field("local_authority", parse_local_authority, required=True),
        "postcode": check.field("postcode", parse_postcode),
        "service_areas": _service_areas(check),
        "capabilities": check.field("capabilities", parse_capabilities, required=True),
        "keywords": split_list(check.raw("keywords")),
        "exclude_keywords": split_list(check.raw("exclude_keywords")),
        "cpv_codes": check.field("cpv_codes", parse_cpv) or [],
        "annual_turnover_pence": check.field("annual_turnover_gbp", parse_pence),
        "employees": check.field("employees", parse_count),
        "min_contract_value_pence": check.field("min_contract_value_gbp", parse_pence),
        "max_contract_value_pence": check.field("max_contract_value_gbp", parse_pence),
        "certifications": split_list(check.raw("certifications")),
        "contact_email": check.field("contact_email", parse_email),
        "digest_opt_in": check.field("digest_opt_in", parse_bool, required=True),
    }
    named_cluster = _cluster(check)
    _check_vcse_consistency(check, rec)
    if check.errors:
        return None, check
    # Blank service_areas means the VCSE's own authority; a blank (or unknown) cluster is derived.
    rec["service_areas"] = rec["service_areas"] or [rec["local_authority"]]
    rec["cluster"] = named_cluster or geography.cluster_for(rec["local_authority"], rec["postcode"])
    rec["cluster_derived"] = named_cluster is None
    return rec, check


def _service_areas(check: RowCheck) -> list[str] | None:
    """The areas understood; names that are not are left out with a warning (the others are kept)."""
    areas, unknown = read_service_areas(check.raw("service_areas"))
    if unknown:
        kept = f"; kept {', '.join(areas)}" if areas else "; the VCSE's own authority is used"
        check.warn("service_areas", f"not a local authority, county, region or 'National': {', '.join(unknown)}; "
                                    f"left out{kept}")
    return areas or None


def _cluster(check: RowCheck) -> str | None:
    """The named cluster, read through aliases and spellings; a note for anything not typed exactly."""
    text = check.raw("cluster")
    if not text:
        return None
    reading = read_cluster(text)
    if reading.note:
        check.warn("cluster", reading.note)
    return reading.cluster


def _check_identifiers(check: RowCheck, rec: dict[str, Any]) -> None:
    """The legal form says which register a number belongs to: a mismatch is worth a look, not a refusal."""
    form, number = rec["legal_form"], rec["company_number"]
    if number is None:
        return
    if form in _SOCIETY_FORMS and re.fullmatch(r"\d{8}", number):
        check.warn("company_number", f"a {form} is usually registered with the FCA (such as 12345R) or at "
                                     f"Companies House with a society prefix (IP, SP, RS...): check {number}")
    elif form in _COMPANY_FORMS and _FCA_SOCIETY.match(number):
        check.warn("company_number", f"{number} is an FCA society number, but a {form} is registered at "
                                     "Companies House: check legal_form and company_number")


def _check_vcse_consistency(check: RowCheck, rec: dict[str, Any]) -> None:
    low, high = rec["min_contract_value_pence"], rec["max_contract_value_pence"]
    if low is not None and high is not None and low > high:
        check.warn("min_contract_value_gbp", "is more than max_contract_value_gbp; both left out (the row is "
                                             "kept without them)")
        rec["min_contract_value_pence"] = rec["max_contract_value_pence"] = None
    _check_identifiers(check, rec)
    if rec["digest_opt_in"] and not check.raw("contact_email"):
        check.warn("contact_email", "digest_opt_in is yes but there is no contact_email: no digest can be sent")
    pc_authority = geography.local_authority_for_postcode(rec["postcode"])
    if rec["local_authority"] and pc_authority and pc_authority != rec["local_authority"]:
        # Only a warning: the district table is approximate and districts straddle boundaries.
        check.warn("postcode", f"postcode {rec['postcode']} is mostly in {pc_authority}, not "
                               f"{rec['local_authority']}; check local_authority")


def parse_consortium_row(file: str, number: int, row: dict[str, str]) -> tuple[dict[str, Any], RowCheck]:
    """A ``consortia.csv`` row as a partial record (usable only if ``check.errors`` is empty).

    Members are checked against the database, and blanks derived, on import.
    """
    check = RowCheck(file, number, row)
    members = split_list(check.raw("member_ids"))
    bad = [m for m in members if not _ID.match(m)]
    if bad:
        check.error("member_ids", f"not usable ids: {', '.join(b[:40] for b in bad)}")
    elif not check.raw("member_ids"):
        check.error("member_ids", "required, but blank")
    elif len(members) < 2:
        check.error("member_ids", "a consortium needs at least two members")
    rec: dict[str, Any] = {
        "id": check.field("id", parse_id, required=True),
        "name": check.field("name", parse_name, required=True),
        "lead_id": check.field("lead_id", parse_id, required=True),
        "member_ids": members,
        "capabilities": check.field("capabilities", clean_text) or None,
        "max_contract_value_pence": check.field("max_contract_value_gbp", parse_pence),
    }
    if rec["lead_id"] and members and rec["lead_id"] not in members:
        check.error("lead_id", f"{rec['lead_id']} is not one of the member_ids")
    return rec, check
