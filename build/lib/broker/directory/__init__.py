"""The directory: VCSEs and consortia imported from the officers' spreadsheets, validated row by row."""

from broker.directory.importer import FileSummary, ImportReport, derive_consortium, import_directory
from broker.directory.query import consortium_members, list_directory, show_entry

__all__ = ["FileSummary", "ImportReport", "consortium_members", "derive_consortium", "import_directory",
           "list_directory", "show_entry"]
