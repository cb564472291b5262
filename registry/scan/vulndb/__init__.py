"""The scanner's vulnerability DB: importers (:mod:`.importers`), the SQLite file (:mod:`.data`)
and its values (:mod:`.records`)."""

from registry.scan.vulndb.data import FILENAME, VulnDB, default_path
from registry.scan.vulndb.importers import read_path
from registry.scan.vulndb.records import Advisory, Affected, SourceStatus

__all__ = ["FILENAME", "Advisory", "Affected", "SourceStatus", "VulnDB", "default_path", "read_path"]
