"""Where a run's rules come from: a folder the user names, else the rule set shipped with broker.

The shipped rules are package data (``broker/rules``), so an installed broker can match from any folder.
A run records which folder it read and why (``RulesLocation.to_json``) beside the rule texts themselves,
which are what replay uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broker.errors import ConfigError

PACKAGED_RULES = Path(__file__).resolve().parent.parent / "rules"

# Where the folder was named: a command-line option, the environment, or nowhere (the shipped set).
SOURCES = ("--rules", "BROKER_RULES", "packaged")


@dataclass(frozen=True)
class RulesLocation:
    """A rules folder and where it was named (one of :data:`SOURCES`)."""

    path: Path
    source: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "directory": str(self.path)}


def rules_location(directory: str | Path | None, source: str = "--rules") -> RulesLocation:
    """The folder to read rules from: ``directory`` (named by ``source``), or the shipped rules when None.

    Raises:
        ConfigError: if the folder does not exist, naming where it was given and what to do.
    """
    if directory is None:
        return RulesLocation(PACKAGED_RULES, "packaged")
    if source not in SOURCES:
        raise ValueError(f"unknown rules source {source!r}")
    path = Path(directory)
    if not path.is_dir():
        hint = ("unset BROKER_RULES or point it at a folder of rule files" if source == "BROKER_RULES"
                else "give a folder of rule files, or leave --rules out to use the rules shipped with broker")
        raise ConfigError(f"rules: no such folder {str(path)!r} (from {source}): {hint}")
    return RulesLocation(path, source)
