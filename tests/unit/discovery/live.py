"""Discovery's handlers over a real store in a temporary directory (no network, no fakes):
``await live(tmp).call("RegisterInstance", {...})`` answers as the control API would, a
``bytes`` answer (DiscoverInstances' cached body) decoded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from discovery.data import Data
from discovery.handlers import Context, bind
from discovery.index import Catalog
from discovery.registrar import Registrar
from discovery.tables import MIGRATIONS
from dockyard.aws.protocol import CLOUDMAP, Call
from dockyard.config import Config
from dockyard.store import Store


@dataclass
class Live:
    store: Store
    catalog: Catalog
    data: Data
    registrar: Registrar
    ops: dict[str, Any]

    async def call(self, operation: str, params: dict[str, Any]) -> Any:
        call = Call({}, CLOUDMAP, operation, None, "test")
        out = await self.ops[operation](call, params)
        return json.loads(out) if isinstance(out, bytes) else out


def live(tmp_path: Path) -> Live:
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    catalog = Catalog(store)
    catalog.reload()
    registrar = Registrar(catalog.data, catalog)
    ops = bind(Context(catalog.data, catalog, Config(), registrar))
    return Live(store, catalog, catalog.data, registrar, ops)


async def dns_service(api: Live, name: str = "web", **extra: Any) -> str:
    """A service (A + SRV records) in a new private DNS namespace ``t.internal``; its id."""
    await api.call("CreatePrivateDnsNamespace", {"Name": "t.internal", "Vpc": "v"})
    ns_id = next(iter(api.catalog.index.namespaces))
    srv = await api.call("CreateService", {
        "Name": name, "NamespaceId": ns_id,
        "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 5}, {"Type": "SRV", "TTL": 5}]}, **extra,
    })
    return str(srv["Service"]["Id"])
