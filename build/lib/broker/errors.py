"""Exceptions raised by the core. The CLI turns them into messages and exit codes."""

from __future__ import annotations


class BrokerError(Exception):
    """Base class for every error the core raises on purpose (exit code 1)."""

    exit_code = 1


class ConfigError(BrokerError):
    """Bad configuration or reference data."""


class SchemaNotReady(BrokerError):
    """The database has not been initialised or is behind the code's migrations."""


class InputError(BrokerError):
    """A record or file could not be read. Names the file, the record or row and the field."""

    def __init__(self, reason: str, *, file: str | None = None, locator: str | None = None,
                 field: str | None = None) -> None:
        self.reason = reason
        self.file = file
        self.locator = locator
        self.field = field
        super().__init__(self.describe())

    def describe(self) -> str:
        where = ", ".join(p for p in (self.file, self.locator, f"field {self.field}" if self.field else None) if p)
        return f"{where}: {self.reason}" if where else self.reason


class NotFound(BrokerError):
    """A requested id does not exist."""
