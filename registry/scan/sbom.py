"""SBOM export of a scan: CycloneDX 1.6 JSON (``cyclonedx-python-lib``) and SPDX 2.3 JSON.

SPDX is written by hand: the document is small (creation info, one package per component with
its purl as an external reference, DESCRIBES relationships) and the ``spdx-tools`` library would
add a dependency tree larger than this module for no validation we rely on.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

from registry.scan.model import ScanResult

__all__ = ["cyclonedx_json", "spdx_json"]


def cyclonedx_json(result: ScanResult, name: str = "image", with_vulnerabilities: bool = True) -> str:
    """CycloneDX JSON: one component per package (bom-ref = purl), and the findings as
    ``vulnerabilities`` affecting them."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    bom.metadata.component = Component(name=name, type=ComponentType.CONTAINER)
    refs: dict[str, Component] = {}
    for p in result.packages:
        if p.purl in refs:
            continue
        try:
            purl = PackageURL.from_string(p.purl)
        except ValueError:
            purl = None
        c = Component(name=p.name, version=p.version, type=ComponentType.LIBRARY, purl=purl, bom_ref=p.purl)
        refs[p.purl] = c
        bom.components.add(c)
    bom.register_dependency(bom.metadata.component, list(refs.values()))
    if with_vulnerabilities:
        sev = {s.name: s for s in VulnerabilitySeverity}
        for f in result.findings:
            if f.purl not in refs:
                continue
            rating = VulnerabilityRating(
                severity=sev.get(
                    f.severity if f.severity != "INFORMATIONAL" else "INFO", VulnerabilitySeverity.UNKNOWN
                ),
                score=Decimal(str(f.score)) if f.score is not None else None,
                vector=f.vector or None,
            )
            bom.vulnerabilities.add(
                Vulnerability(
                    bom_ref=f"{f.id}:{f.purl}",
                    id=f.id,
                    source=VulnerabilitySource(name=f.source) if f.source else None,
                    description=f.summary or None,
                    recommendation=f"upgrade to {f.fixed_version}" if f.fixed_version else None,
                    ratings=[rating],
                    affects=[BomTarget(ref=refs[f.purl].bom_ref.value)],
                )
            )
    return JsonV1Dot6(bom).output_as_string(indent=2)


def _spdx_id(i: int) -> str:
    return f"SPDXRef-Package-{i}"


def spdx_json(result: ScanResult, name: str = "image") -> str:
    """SPDX 2.3 JSON: the packages of ``result`` described by one document."""
    packages: list[dict[str, Any]] = []
    for i, p in enumerate(result.packages, 1):
        packages.append(
            {
                "SPDXID": _spdx_id(i),
                "name": p.name,
                "versionInfo": p.version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "sourceInfo": "found at " + ", ".join(p.locations[:5]) if p.locations else "NOASSERTION",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": p.purl,
                    }
                ],
            }
        )
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"https://dockyard.invalid/spdx/{uuid.uuid4()}",
        "creationInfo": {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "creators": ["Tool: dockyard-scan"],
        },
        "packages": packages,
        "relationships": [
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": _spdx_id(i),
            }
            for i in range(1, len(packages) + 1)
        ],
    }
    return json.dumps(doc, indent=2)
