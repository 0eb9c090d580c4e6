"""What kind of procurement a notice is, read from its words: a framework, a dynamic purchasing system or
vehicle, an approved list, or a call-off from one of them.

A framework agreement, a DPS/DPV and an approved list only set up a route to future contracts: their
published value is a ceiling over every call-off that may follow, often for hundreds of suppliers, so it
is not brokerage value (it counts £0 until a call-off or award value is recorded). A *call-off* from one
of them is a real contract with a value of its own. Publishers rarely fill the structured fields (OCDS
``techniques``, the Contracts Finder procedure type is often "Other DPS" or blank), so every source asks
this module about the title, the procedure text and the description as well.

Evidence, strongest first:

* the title or the procedure text names a call-off (``call-off``, ``mini-competition``, ``further
  competition``, "from the ... framework"): a call-off, never a framework;
* the title or the procedure text names a framework, DPS/DPV/dynamic market or approved list;
* the description names one, unless the description also speaks of a call-off or of buying *under* an
  existing framework (a call-off's description names its parent framework).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "Dynamic Purchasing System", "... Vehicle", "Dynamic Purchasing Arrangement", "Dynamic Market" (the
# Procurement Act 2023 name), and the acronyms as written in capitals (case-sensitive: "dps" in running
# text is rarer and often something else).
_DPS_WORDS = re.compile(r"\bdynamic\s+(?:purchasing|market)\b", re.IGNORECASE)
_DPS_ACRONYM = re.compile(r"\b(?:DPS|DPV|PDPS)s?\b")
_FRAMEWORK_WORDS = re.compile(
    r"\bframework\s+(?:agreement|contract|arrangement)s?\b|\bopen\s+framework\b", re.IGNORECASE)
# An approved list in a description is often the list a contract is bought from ("providers must be on
# the approved list"): it makes the notice one only with words that set the list up.
_APPROVED_LIST = re.compile(
    r"\bapproved\s+(?:(?:provider|supplier|contractor|service\s+provider|framework)s?'?\s+)?lists?\b|"
    r"\bapproved\s+providers?\b|\bselect(?:ed)?\s+list\s+of\s+(?:providers|suppliers)\b",
    re.IGNORECASE)
# Titles use "framework" alone: "Framework for ...", "Framework of ...", "... Framework", "... Framework
# 2020-2023 (SDF)", "Framework - Lot 2".
_FRAMEWORK_TITLE = re.compile(
    r"^(?:[^:]{0,40}:\s*)?framework\s+(?:for|of)\b|"
    r"\bframework(?:\s+20\d\d(?:\s*[-–/]\s*(?:20)?\d\d)?)?\s*(?:\([^)]*\)?)?\s*(?:[-–:]\s*lot\b.*)?$",
    re.IGNORECASE)
_CALL_OFF = re.compile(
    r"\bcall[\s-]*offs?\b|\bmini[\s-]*competitions?\b|\bfurther\s+competitions?\b|"
    r"\b(?:from|under|via|through|using)\s+(?:a|an|the|our|its|their)?\s*(?:[\w&'.-]+\s+){0,6}?"
    r"(?:framework|dynamic\s+purchasing|dps\b|dpv\b)", re.IGNORECASE)
# Words that set one up or invite suppliers onto it ("to establish a framework", "apply to join the DPS"):
# a framework's description often speaks of its future call-offs too.
_SETS_UP = re.compile(
    r"\b(?:establish|set(?:ting)?\s+up|creat|procur|appoint|join|admi(?:t|ssion)|appl(?:y|ication)|"
    r"register|enrol|open\s+to\s+new)\w*\b[^.;]{0,80}?"
    r"(?:framework|dynamic\s+purchasing|dynamic\s+market|\bDPS\b|\bDPV\b|approved\s+(?:\w+\s+)?list)",
    re.IGNORECASE)
# Procedure codes that announce a call-off: Contracts Finder "CallOffFromFrameworkAgreement",
# "CallOffFromDynamicPurchasingSystem".
_CALL_OFF_CODE = re.compile(r"call\s*off", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Kind:
    """What a notice's words say it is. At most one of the three is true."""

    framework: bool = False
    dps: bool = False
    call_off: bool = False


def _names_dps(text: str) -> bool:
    return bool(_DPS_WORDS.search(text) or _DPS_ACRONYM.search(text))


def procurement_kind(title: str = "", procedure: str = "", description: str = "") -> Kind:
    """Classify a notice from its title, procedure text (method details, procedure/contract type codes)
    and description. Never raises; empty text gives an ordinary contract."""
    head = f"{title}\n{procedure}"
    if _CALL_OFF.search(title) or _CALL_OFF_CODE.search(procedure) or _CALL_OFF.search(procedure):
        return Kind(call_off=True)
    if _names_dps(head):
        return Kind(dps=True)
    if _FRAMEWORK_WORDS.search(head) or _APPROVED_LIST.search(head) or _FRAMEWORK_TITLE.search(title) \
            or re.search(r"\bframework\b", procedure, re.IGNORECASE):
        return Kind(framework=True)
    if _CALL_OFF.search(description) and not _SETS_UP.search(description):
        return Kind(call_off=True)  # bought under an existing arrangement: judged by its own value
    if _names_dps(description):
        return Kind(dps=True)
    if _FRAMEWORK_WORDS.search(description) or (_APPROVED_LIST.search(description)
                                                and _SETS_UP.search(description)):
        return Kind(framework=True)
    return Kind()
