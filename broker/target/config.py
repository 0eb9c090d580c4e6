"""Counting configuration: the policies of BRIEF (Policies: value basis, counting), each configurable.

The exact values and their sha256 are recorded on every ledger batch and in every progress output, so a
funder can see which rules produced a figure. A file may be TOML or YAML, with the keys below at the top
level or under a ``target`` table::

    target_gbp = 1000000            # or target_pence = 100000000
    counting_stage = "interested"   # matched | introduced | interested | bid | won
    pipeline_stage = "introduced"   # shown beside the headline: what has gone out but not (yet) counted
    window_start = 2025-04-01
    window_end = 2028-03-31
    value_basis = "lower_bound"     # lower_bound | upper_bound | midpoint
    frameworks_count_zero = true
    award_value_counts = true
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from broker.errors import ConfigError
from broker.match.yamlfile import YamlProblem, safe_load_bounded
from broker.normalise.money import gbp_to_pence
from broker.target.stages import COUNTING_STAGES

VALUE_BASES = ("lower_bound", "upper_bound", "midpoint")


@dataclass(frozen=True)
class TargetConfig:
    """How brokered value is counted. Defaults are the BRIEF's policies.

    Attributes:
        target_pence: the programme's output target (£1,000,000).
        counting_stage: the stage at which an opportunity counts toward the headline: ``interested``, the
            VCSE or an officer confirmed interest (an introduction alone is not yet brokerage).
        pipeline_stage: the earlier stage shown beside the headline as the pipeline: ``introduced``, a
            digest was delivered (SMTP accepted it) or an officer marked it sent.
        window_start: first day of the programme window (pace is measured from here).
        window_end: last day of the programme window (the projected date is judged against it).
        value_basis: which figure of a value range counts (BRIEF: the lower bound).
        frameworks_count_zero: frameworks and DPS count £0 until a call-off or award value is recorded.
        award_value_counts: an awarded value recorded with a ``won`` outcome replaces the notice estimate.
    """

    target_pence: int = 100_000_000
    counting_stage: str = "interested"
    pipeline_stage: str = "introduced"
    window_start: date = date(2025, 4, 1)
    window_end: date = date(2028, 3, 31)
    value_basis: str = "lower_bound"
    frameworks_count_zero: bool = True
    award_value_counts: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.target_pence, int) or isinstance(self.target_pence, bool) \
                or self.target_pence <= 0:
            raise ConfigError(f"target must be a positive amount, got {self.target_pence!r}")
        for name in ("counting_stage", "pipeline_stage"):
            if getattr(self, name) not in COUNTING_STAGES:
                raise ConfigError(f"{name} {getattr(self, name)!r} is not one of {', '.join(COUNTING_STAGES)}")
        if self.value_basis not in VALUE_BASES:
            raise ConfigError(f"value_basis {self.value_basis!r} is not one of {', '.join(VALUE_BASES)}")
        if self.window_end < self.window_start:
            raise ConfigError(f"window_end {self.window_end} is before window_start {self.window_start}")
        for name in ("frameworks_count_zero", "award_value_counts"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false")

    def as_dict(self) -> dict[str, Any]:
        """The values as JSON-ready data (dates as ``YYYY-MM-DD``), in a fixed key order."""
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        return data

    def sha256(self) -> str:
        """A stable hash of the values: two outputs with the same hash used the same rules."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


DEFAULT_CONFIG = TargetConfig()
_FIELDS = {f.name for f in fields(TargetConfig)}


def load_config(path: Path | str | None) -> TargetConfig:
    """Read a TOML (``.toml``) or YAML (anything else) configuration file; ``None`` gives the defaults.

    Raises:
        ConfigError: the file cannot be read, is not valid TOML/YAML, or holds an unknown key or bad value.
    """
    if path is None:
        return DEFAULT_CONFIG
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the target configuration ({exc})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else safe_load_bounded(text)
    except YamlProblem as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.message}") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'YAML'} ({exc})") \
            from None
    try:
        return config_from_mapping(data or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_from_mapping(data: Any) -> TargetConfig:
    """Build a configuration from parsed TOML/YAML (keys at the top level or under ``target``)."""
    if not isinstance(data, dict):
        raise ConfigError("the target configuration must be a table of keys")
    if isinstance(data.get("target"), dict):
        data = data["target"]
    values = dict(data)
    if "target_gbp" in values:
        if "target_pence" in values:
            raise ConfigError("give target_gbp or target_pence, not both")
        values["target_pence"] = _gbp(values.pop("target_gbp"))
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
    for name in ("window_start", "window_end"):
        if name in values:
            values[name] = _date(name, values[name])
    return replace(DEFAULT_CONFIG, **values)


def _gbp(value: Any) -> int:
    try:
        pence = gbp_to_pence(value)
    except ValueError as exc:
        raise ConfigError(f"target_gbp: {exc}") from None
    if pence is None:
        raise ConfigError("target_gbp is blank")
    return pence


def _date(name: str, value: Any) -> date:
    if isinstance(value, datetime):  # TOML/YAML may parse a timestamp: the day is what counts
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name}: not a YYYY-MM-DD date: {value!r}") from None
