"""The state of one ADS state-of-the-world stream, without any network (pure, testable).

xDS SotW protocol (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol), as
this module applies it, per type URL:

* the server answers with ``version_info`` and a fresh ``nonce``; Envoy's next request for
  that type carries that nonce back. A request whose ``response_nonce`` is not the last one
  sent for its type is stale (Envoy had not yet seen our newest answer) and is ignored.
* a request with the current nonce and no ``error_detail`` is an ACK of the version sent;
  with ``error_detail`` it is a NACK: Envoy keeps its last good configuration, we record
  the rejected version with Envoy's message, and that version is never sent again on this
  stream (a later, different version is).
* a request whose ``resource_names`` differ from the previous one (a new cluster asking for
  its endpoints) is answered at once, with the current version, even if unchanged.
* the first request of a type may carry the version Envoy already holds (a reconnect after
  a control plane restart); if the cache holds the same version nothing is re-sent.
* warming: a cluster Envoy receives changed is rebuilt and waits for its load assignment,
  though the EDS names Envoy asks for are the same (it would wait ``initial_fetch_timeout``,
  15 s by default, before using its cached one). So after a CDS response the next EDS request
  with the current nonce is answered again, even unchanged.

Responses are produced in make-before-break order (``snapshot.ORDER``): clusters and
endpoints before the listeners and routes that name them. Removals come after: while the
routes or the listeners (tcp proxies and ingress name clusters too) Envoy holds have not been
ACKed at the snapshot's versions, a cluster Envoy was sent and the snapshot drops is kept
(CDS is sent as the union, with its own version); the CDS of the snapshot itself follows
those ACKs. (A NACKed route or listener version keeps the union, which is right: Envoy's old
ones still name those clusters.) CDS and LDS are always sent
whole (wildcard); EDS, RDS and SDS only carry the names Envoy asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ORDER, ROUTE, SECRET, Snapshot, name_of, version_of

# A response of this type makes Envoy warm resources that wait for the other type.
WARMED_BY = {CLUSTER: (ENDPOINT,)}


class ProtocolError(Exception):
    """The peer broke the protocol; only its own stream is closed."""


@dataclass(frozen=True)
class Nack:
    node: str
    type_url: str
    version: str
    message: str


@dataclass
class TypeState:
    names: frozenset[str] = frozenset()
    sent_version: str = ""
    nonce: str = ""
    acked_version: str = ""
    nacked: set[str] = field(default_factory=set)
    pending: bool = False


class AdsStream:
    """Feed it requests (``on_request``) and snapshots (``responses``); it says what to send."""

    def __init__(self, on_nack: Callable[[Nack], None] | None = None) -> None:
        self.node = ""
        self.types: dict[str, TypeState] = {}
        self._nonce = 0
        self._on_nack = on_nack
        self._clusters: dict[str, Message] = {}  # the clusters last sent, by name
        self._rewarm: set[str] = set()  # types to answer again (EDS: CDS was sent since)

    def on_request(self, req: discovery_pb2.DiscoveryRequest) -> None:
        if not self.node:
            if not req.node.id:
                raise ProtocolError("the first request must carry node.id")
            self.node = req.node.id
        if req.type_url not in ORDER:
            raise ProtocolError(f"unsupported type_url {req.type_url!r}")
        names = frozenset(req.resource_names) - {"*"}
        st = self.types.get(req.type_url)
        if st is None:
            self.types[req.type_url] = TypeState(names=names, sent_version=req.version_info,
                                                 acked_version=req.version_info, pending=not req.version_info)
            return
        if req.response_nonce != st.nonce:
            return  # stale: an answer to an older response
        if req.HasField("error_detail"):
            st.nacked.add(st.sent_version)
            if self._on_nack:
                self._on_nack(Nack(self.node, req.type_url, st.sent_version, req.error_detail.message))
        else:
            st.acked_version = req.version_info
        if names != st.names:
            st.names = names
            st.pending = True
        if req.type_url in self._rewarm and not req.HasField("error_detail"):
            st.pending = True

    def responses(self, snapshot: Snapshot | None) -> list[discovery_pb2.DiscoveryResponse]:
        """What to send now, in make-before-break order; marks each as sent."""
        if snapshot is None:
            return []
        out = []
        for type_url in ORDER:
            st = self.types.get(type_url)
            if st is None:
                continue
            version, resources = snapshot.versions[type_url], snapshot.resources[type_url]
            if type_url == CLUSTER:
                version, resources = self._clusters_to_send(snapshot)
            if version in st.nacked or (version == st.sent_version and not st.pending):
                continue
            self._nonce += 1
            st.sent_version, st.nonce, st.pending = version, str(self._nonce), False
            self._rewarm.discard(type_url)
            self._rewarm.update(WARMED_BY.get(type_url, ()))
            if type_url == CLUSTER:
                self._clusters = {name_of(c): c for c in resources}
            if type_url in (ENDPOINT, ROUTE, SECRET) and st.names:
                resources = tuple(r for r in resources if name_of(r) in st.names)
            packed = []
            for r in resources:
                a = any_pb2.Any()
                a.Pack(r)
                packed.append(a)
            out.append(discovery_pb2.DiscoveryResponse(version_info=version, resources=packed,
                                                       type_url=type_url, nonce=st.nonce))
        return out

    def _clusters_to_send(self, snapshot: Snapshot) -> tuple[str, tuple[Message, ...]]:
        """The snapshot's clusters, plus the dropped ones while Envoy's routes or listeners (tcp
        proxies, ingress) may still name them."""
        clusters = snapshot.resources[CLUSTER]
        dropped = set(self._clusters) - snapshot.names(CLUSTER)
        routes, listeners = self.types.get(ROUTE), self.types.get(LISTENER)
        settled = ((routes is None or routes.acked_version == snapshot.versions[ROUTE]
                    or not snapshot.resources[ROUTE])
                   and (listeners is None or listeners.acked_version == snapshot.versions[LISTENER]))
        if not dropped or settled:
            return snapshot.versions[CLUSTER], clusters
        union = tuple(sorted([*clusters, *(self._clusters[n] for n in dropped)], key=name_of))
        return version_of(union), union

    def known(self, snapshot: Snapshot | None) -> dict[str, str]:
        """The versions this stream is settled on, per subscribed type, for the cache watch."""
        return {t: (snapshot.versions[t] if snapshot else "") for t in self.types}
