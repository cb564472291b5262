"""``dockyard vulndb import PATH...`` and ``dockyard vulndb status [--json]`` (added by
``registry.cli``). They open ``<data-dir>/vulndb.sqlite`` directly, so they work whether or not
the server runs.

``dockyard scan show REPO:TAG|REPO@DIGEST [--json] [--format table|trivy|cyclonedx|spdx]``
asks the server (``DescribeImageScanFindings``, every page) for an image's last scan: a table
by severity, the ECR answer as JSON, or Trivy-compatible JSON (:func:`trivy_json`). For
``cyclonedx`` (CycloneDX 1.6 JSON with the vulnerabilities) and ``spdx`` (SPDX 2.3 JSON) it
asks ``GetImageSbom`` for what that scan catalogued (:mod:`registry.ecr.sboms`) and writes
the SBOM with :mod:`registry.scan.sbom`: nothing is scanned again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "image_params", "result_of", "rows", "trivy_json"]

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")


def image_params(ref: str) -> dict[str, Any] | None:
    """``REPO:TAG`` / ``REPO@DIGEST`` / ``REPO`` (tag latest) as ECR's repositoryName and
    imageId; None when it names no repository."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        image = {"imageDigest": digest}
    else:
        name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        image = {"imageTag": tag}
    if not name:
        return None
    return {"repositoryName": name, "imageId": image}


def _attrs(finding: dict[str, Any]) -> dict[str, str]:
    return {a["key"]: a.get("value", "") for a in finding.get("attributes", [])}


def rows(findings: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Table rows of ECR findings, most severe first."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    out = []
    for f in sorted(findings, key=lambda f: (rank.get(f.get("severity", ""), 9), f.get("name", ""))):
        a = _attrs(f)
        out.append(
            {
                "severity": f.get("severity", ""),
                "id": f.get("name", ""),
                "aliases": a.get("aliases", ""),
                "package": a.get("package_name", ""),
                "installed": a.get("package_version", ""),
                "fixed": a.get("fixed_version", ""),
            }
        )
    return out


def trivy_json(ref: str, answer: dict[str, Any], findings: list[dict[str, Any]]) -> dict[str, Any]:
    """Trivy's JSON report (``SchemaVersion`` 2) of an ECR scan answer: one result per package
    type, each finding a ``Vulnerabilities`` entry (VulnerabilityID, PkgName, InstalledVersion,
    FixedVersion, Severity, PrimaryURL, Title, References to its aliases)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        a = _attrs(f)
        vuln: dict[str, Any] = {
            "VulnerabilityID": f.get("name", ""),
            "PkgName": a.get("package_name", ""),
            "InstalledVersion": a.get("package_version", ""),
            "FixedVersion": a.get("fixed_version", ""),
            "Severity": f.get("severity") if f.get("severity") in SEVERITIES[:4] else "UNKNOWN",
            "PrimaryURL": f.get("uri", ""),
            "Title": f.get("description", ""),
        }
        if a.get("aliases"):
            vuln["VendorIDs"] = a["aliases"].split(",")
        by_type.setdefault(a.get("package_type", ""), []).append(vuln)
    return {
        "SchemaVersion": 2,
        "ArtifactName": ref,
        "ArtifactType": "container_image",
        "Metadata": {"ImageID": answer.get("imageId", {}).get("imageDigest", "")},
        "Results": [
            {"Target": ref, "Class": "lang-pkgs" if t not in ("deb", "apk", "rpm") else "os-pkgs", "Type": t,
             "Vulnerabilities": v}
            for t, v in sorted(by_type.items())
        ],
    }


def result_of(answer: dict[str, Any]) -> Any:
    """The ``ScanResult`` a ``GetImageSbom`` answer holds (its OS, packages and findings)."""
    from registry.scan.model import Finding, OsInfo, Package, ScanResult

    def fields(cls: type, raw: dict[str, Any], tuples: tuple[str, ...]) -> Any:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: tuple(v) if k in tuples else v for k, v in raw.items() if k in known})

    os = answer.get("os")
    return ScanResult(
        fields(OsInfo, os, ()) if os else None,
        tuple(fields(Package, p, ("locations", "licenses")) for p in answer.get("packages", [])),
        tuple(fields(Finding, f, ("aliases",)) for f in answer.get("findings", [])),
    )


def add_commands(sub: Any, ctx: Any) -> None:
    def db_path(args: argparse.Namespace) -> Path:
        from registry.scan.vulndb import default_path

        data = ctx.config(args).data_path
        data.mkdir(parents=True, exist_ok=True)
        return default_path(data)

    def import_(args: argparse.Namespace) -> int:
        from registry.scan.vulndb import VulnDB, read_path

        paths = [Path(p) for p in args.paths]
        for p in paths:
            if not p.exists():
                raise ctx.UserError(f"{p}: no such file or directory")
        db = VulnDB(db_path(args))
        try:
            for p in paths:
                start = time.monotonic()

                def progress(n: int, p: Path = p) -> None:
                    print(f"{p.name}: {n} records read", file=sys.stderr, flush=True)

                try:
                    count = db.import_records(read_path(p), str(p.resolve()), progress)
                except ValueError as e:
                    raise ctx.UserError(str(e)) from None
                stored = ", ".join(f"{s} {n}" for s, n in sorted(count.stored.items())) or "nothing"
                print(
                    f"{p.name}: stored {stored}; skipped {count.skipped} broken records "
                    f"({time.monotonic() - start:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            db.close()
        ctx.done(args, f"imported {len(paths)} path(s) into the vulnerability DB")
        return 0

    def status(args: argparse.Namespace) -> int:
        from registry.scan.vulndb import VulnDB

        db = VulnDB(db_path(args))
        try:
            rows = [
                {
                    "source": s.name,
                    "records": s.records,
                    "entries": s.entries,
                    "skipped": s.skipped,
                    "newest": s.newest,
                    "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.imported_at)),
                    "path": s.path,
                }
                for s in db.sources()
            ]
        finally:
            db.close()
        ctx.emit(args, rows, ["source", "records", "skipped", "newest", "imported", "path"])
        return 0

    group = sub.add_parser("vulndb", help="the scanner's vulnerability database").add_subparsers(
        dest="vulndb_command", required=True, metavar="ACTION"
    )
    p = group.add_parser(
        "import",
        help="import advisories: OSV zip/dir/JSON, Debian DSA/DLA lists, "
        "Retire.js JSON, Alpine secdb JSON (re-importing replaces the same records)",
    )
    ctx.data_dir_args(p)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=import_)
    p = group.add_parser("status", help="sources, record counts and newest record dates")
    ctx.data_dir_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=status)

    def show(args: argparse.Namespace) -> int:
        import json

        from dockyard.aws.protocol import ECR

        params = image_params(args.image)
        if params is None:
            raise ctx.UserError(f"{args.image}: give REPO:TAG or REPO@DIGEST")
        client = ctx.client(args)
        if args.format in ("cyclonedx", "spdx"):
            from registry.scan.sbom import cyclonedx_json, spdx_json

            result = result_of(client.call(ECR, "GetImageSbom", params))
            write = cyclonedx_json if args.format == "cyclonedx" else spdx_json
            print(write(result, args.image))
            return 0
        answer = client.call(ECR, "DescribeImageScanFindings", params)
        findings = list((answer.get("imageScanFindings") or {}).get("findings", []))
        while answer.get("nextToken"):
            more = {**params, "nextToken": answer["nextToken"]}
            answer = client.call(ECR, "DescribeImageScanFindings", more)
            findings += (answer.get("imageScanFindings") or {}).get("findings", [])
        status = answer.get("imageScanStatus", {})
        if args.format == "trivy":
            print(json.dumps(trivy_json(args.image, answer, findings), indent=2))
        elif args.json:
            whole = dict(answer)
            whole.pop("nextToken", None)
            if "imageScanFindings" in whole:
                whole["imageScanFindings"] = {**whole["imageScanFindings"], "findings": findings}
            print(json.dumps(whole, indent=2))
        else:
            counts = (answer.get("imageScanFindings") or {}).get("findingSeverityCounts", {})
            summary = ", ".join(f"{s} {counts[s]}" for s in SEVERITIES if s in counts) or "no findings"
            print(f"{args.image}: {status.get('status', '?')} ({status.get('description', '')}); {summary}")
            if findings:
                columns = ["severity", "id", "aliases", "package", "installed", "fixed"]
                print(ctx.table(rows(findings), columns))
        return 0 if status.get("status") in ("COMPLETE", "IN_PROGRESS") else 1

    scan = sub.add_parser("scan", help="image scans (server running)").add_subparsers(
        dest="scan_command", required=True, metavar="ACTION"
    )
    p = scan.add_parser("show", help="an image's last scan: findings by severity")
    ctx.client_args(p)
    p.add_argument("image", metavar="REPO:TAG|REPO@DIGEST")
    p.add_argument(
        "--format",
        choices=["table", "trivy", "cyclonedx", "spdx"],
        default="table",
        help="trivy: Trivy-compatible JSON; cyclonedx: CycloneDX JSON with vulnerabilities; spdx: SPDX JSON",
    )
    p.set_defaults(func=show)
