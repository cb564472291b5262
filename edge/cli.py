"""``dockyard certificate self-signed NAME...``: try HTTPS listeners without a CA.

Makes a self-signed ECDSA P-256 certificate for the names (DNS names or IP addresses; the
first is the common name), imports it into ACM over the control API (ImportCertificate, so it
is what ``aws acm import-certificate`` would store), writes the certificate PEM to ``--out``
(default ``./NAME.pem``: what ``curl --cacert`` trusts) and prints its ARN (``--json``: the
ARN and the file). The private key is not written anywhere but the store.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from edge.pem import self_signed

__all__ = ["add_commands"]


def _self_signed(ctx: Any, args: argparse.Namespace) -> int:
    cert, key = self_signed(args.names, days=args.days)
    out = Path(args.out or f"{args.names[0]}.pem")
    from dockyard.client import ApiError

    try:
        arn = ctx.client(args).call(
            "CertificateManager",
            "ImportCertificate",
            {
                "Certificate": base64.b64encode(cert).decode(),
                "PrivateKey": base64.b64encode(key).decode(),
                "Tags": [{"Key": "dockyard:self-signed", "Value": "true"}],
            },
        )["CertificateArn"]
    except ApiError as e:
        raise ctx.UserError(f"import failed: {e}") from None
    out.write_bytes(cert)
    if args.json:
        print(json.dumps({"CertificateArn": arn, "CertificateFile": str(out)}))
    else:
        print(arn)
    return 0


def add_commands(sub: Any, ctx: Any) -> None:
    cert = sub.add_parser("certificate", help="ACM certificates for HTTPS listeners")
    acts = cert.add_subparsers(dest="certificate_command", required=True, metavar="ACTION")
    p = acts.add_parser("self-signed", help="create and import a self-signed certificate for NAME...")
    ctx.client_args(p)
    p.add_argument(
        "names", nargs="+", metavar="NAME", help="DNS names or IP addresses (the first: common name)"
    )
    p.add_argument("--out", help="where to write the certificate PEM (default: ./NAME.pem)")
    p.add_argument("--days", type=int, default=365, help="validity in days (default: 365)")
    p.set_defaults(func=lambda args: _self_signed(ctx, args))
