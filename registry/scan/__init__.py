"""The image scanner: catalogers over layer blobs, a local vulnerability DB, and matching.

Public API: :func:`scan_image` (and :func:`catalog_layers`), the values in :mod:`.model`, the DB
in :mod:`.vulndb`, SBOM export in :mod:`.sbom`. Pure cores (``catalog``, ``match``, ``versions``,
``severity``, ``vulndb.importers``) with thin I/O (``layers`` streams blobs, ``vulndb.data`` is
the SQLite file). See docs/scanning.md.
"""

from registry.scan.layers import Limits
from registry.scan.model import Finding, OsInfo, Package, ScanFailed, ScanResult, UnsupportedImage
from registry.scan.scanner import BlobOpener, blob_store_opener, catalog_layers, layer_digests, scan_image

__all__ = [
    "BlobOpener",
    "Finding",
    "Limits",
    "OsInfo",
    "Package",
    "ScanFailed",
    "ScanResult",
    "UnsupportedImage",
    "blob_store_opener",
    "catalog_layers",
    "layer_digests",
    "scan_image",
]
