"""The state of one ADS incremental (delta) xDS stream, without any network (pure, testable).

Delta xDS (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds),
as this module applies it, per type URL:

* each resource has its own version (``resource_version``: a hash of that one resource). The
  stream tracks, by name, the version Envoy holds (``has``: updated when a response is sent,
  put back if Envoy NACKs it) and the version Envoy ACKed (``acked``).
* the first request of a type may carry ``initial_resource_versions`` (a reconnect): Envoy
  holds those, so a resource whose version is the current one is not sent again.
* ``resource_names_subscribe`` / ``resource_names_unsubscribe`` change the names Envoy wants.
  A first request with no names, or a subscription to ``*``, is a wildcard (all resources of
  the snapshot, as Envoy asks for CDS and LDS); unsubscribing ``*``, or naming resources
  after a legacy (nameless) wildcard, ends it. An unsubscribed name is forgotten at once.
* a response carries only the resources that are new or changed for Envoy, and in
  ``removed_resources`` the names Envoy holds that the snapshot dropped; ``system_version_info``
  is the snapshot's version of the type when Envoy will then hold exactly the snapshot's
  resources, else a hash of what it will hold. Each response has a fresh nonce.
* a request with a nonce we sent and no ``error_detail`` ACKs that response; with
  ``error_detail`` it is a NACK: recorded as a ``Nack`` (the response's system version and
  Envoy's message), the resource versions of that response are never sent again on this
  stream, and ``has`` goes back to what Envoy had before. An unknown nonce acknowledges nothing;
  only the last ``MAX_IN_FLIGHT`` unanswered responses of a type are remembered.
* the first request of a type with no initial versions is answered even when there is
  nothing to send (an empty response), so Envoy finishes its initial fetch.
* warming: a cluster Envoy held and receives changed is rebuilt and waits for its load
  assignment without asking again (it would wait ``initial_fetch_timeout``, 15 s by default,
  before using its cached one), so its load assignment is sent again after it, even unchanged.

Make-before-break: responses go in ``snapshot.ORDER`` (CDS, EDS, LDS, RDS). Removals wait:
clusters and load assignments are removed only once every route configuration and every
listener Envoy holds is ACKed at the snapshot's version (its old routes, tcp proxies and
ingress listeners may still name them); route configurations only once every listener is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import Message

from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ORDER, ROUTE, SECRET, Snapshot, name_of, version_of
from mesh.stream import Nack, ProtocolError

# Responses in flight kept per type; an older one is dropped (its ACK then acknowledges
# nothing), so a peer that never ACKs cannot grow the stream's state.
MAX_IN_FLIGHT = 64
# A type's removals wait until Envoy's resources of the other types are settled (listeners
# name clusters too: tcp_proxy, ingress).
REMOVAL_WAITS_FOR = {CLUSTER: (ROUTE, LISTENER), ENDPOINT: (ROUTE, LISTENER), ROUTE: (LISTENER,),
                     SECRET: (CLUSTER, LISTENER)}


@dataclass
class Sent:
    """One response in flight: the system version and what Envoy held before it, by name."""

    version: str
    resources: dict[str, str]  # name -> version sent
    removed: tuple[str, ...]
    before: dict[str, str | None]  # name -> version Envoy held before (None: nothing)


@dataclass
class DeltaTypeState:
    wildcard: bool = False
    legacy_wildcard: bool = False
    names: set[str] = field(default_factory=set)
    has: dict[str, str] = field(default_factory=dict)
    acked: dict[str, str] = field(default_factory=dict)
    in_flight: dict[str, Sent] = field(default_factory=dict)  # by nonce
    nacked: set[tuple[str, str]] = field(default_factory=set)  # (name, version)
    acked_version: str = ""
    reply_once: bool = False
    resend: set[str] = field(default_factory=set)  # names to send even if Envoy holds them


def resource_versions(snapshot: Snapshot, type_url: str) -> dict[str, str]:
    """Each resource's own version, by name (hashed once per resource across the nodes of one
    push when the snapshot was made with a ``Shared``)."""
    if snapshot.resource_versions is not None:
        return dict(snapshot.resource_versions[type_url])
    return {name_of(r): version_of((r,)) for r in snapshot.resources[type_url]}


def _held_version(held: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, version in sorted(held.items()):
        digest.update(f"{name}\0{version}\0".encode())
    return digest.hexdigest()[:16]


class DeltaStream:
    """Feed it requests (``on_request``) and snapshots (``responses``); it says what to send.

    ``resources_sent`` counts, per type URL, the resources sent on this stream (removals not
    included); ``responses_sent`` the responses.
    """

    def __init__(self, on_nack: Callable[[Nack], None] | None = None) -> None:
        self.node = ""
        self.types: dict[str, DeltaTypeState] = {}
        self.resources_sent: dict[str, int] = dict.fromkeys(ORDER, 0)
        self.responses_sent = 0
        self._nonce = 0
        self._on_nack = on_nack
        self._memo: tuple[Snapshot | None, dict[str, dict[str, str]]] = (None, {})

    def on_request(self, req: discovery_pb2.DeltaDiscoveryRequest) -> None:
        if not self.node:
            if not req.node.id:
                raise ProtocolError("the first request must carry node.id")
            self.node = req.node.id
        if req.type_url not in ORDER:
            raise ProtocolError(f"unsupported type_url {req.type_url!r}")
        subscribe, unsubscribe = set(req.resource_names_subscribe), set(req.resource_names_unsubscribe)
        st = self.types.get(req.type_url)
        if st is None:
            st = self.types[req.type_url] = DeltaTypeState()
            st.legacy_wildcard = not subscribe
            st.has = dict(req.initial_resource_versions)
            st.acked = dict(req.initial_resource_versions)
            st.reply_once = not req.initial_resource_versions
        elif req.response_nonce in st.in_flight:
            self._answer(req, st)
        if "*" in subscribe:
            st.wildcard = True
        if "*" in unsubscribe:
            st.wildcard = st.legacy_wildcard = False
        named = subscribe - {"*"}
        if named and st.legacy_wildcard and not st.wildcard:
            st.legacy_wildcard = False
        for name in named - st.names:
            if name not in req.initial_resource_versions:
                st.has.pop(name, None)  # a new subscription: send it even if sent before
        st.names |= named
        for name in unsubscribe - {"*"}:
            st.names.discard(name)
            st.has.pop(name, None)
            st.acked.pop(name, None)

    def _answer(self, req: discovery_pb2.DeltaDiscoveryRequest, st: DeltaTypeState) -> None:
        sent = st.in_flight.pop(req.response_nonce)
        if req.HasField("error_detail"):
            st.nacked.update(sent.resources.items())
            for name, before in sent.before.items():
                if st.has.get(name) == sent.resources.get(name) or name in sent.removed:
                    if before is None:
                        st.has.pop(name, None)
                    else:
                        st.has[name] = before
            if self._on_nack:
                self._on_nack(Nack(self.node, req.type_url, sent.version, req.error_detail.message))
            return
        st.acked.update(sent.resources)
        for name in sent.removed:
            st.acked.pop(name, None)
        st.acked_version = sent.version

    def _versions(self, snapshot: Snapshot) -> dict[str, dict[str, str]]:
        if self._memo[0] is not snapshot:
            self._memo = (snapshot, {t: resource_versions(snapshot, t) for t in ORDER})
        return self._memo[1]

    def _wanted(self, st: DeltaTypeState, current: dict[str, str]) -> dict[str, str]:
        if st.wildcard or st.legacy_wildcard:
            return current
        return {n: v for n, v in current.items() if n in st.names}

    def _settled(self, type_url: str, versions: dict[str, dict[str, str]]) -> bool:
        """Envoy's ACKed resources of this type are exactly the snapshot's (or it has none)."""
        st = self.types.get(type_url)
        if st is None:
            return True
        current = versions[type_url]
        return all(current.get(n) == v for n, v in st.acked.items())

    def responses(self, snapshot: Snapshot | None) -> list[discovery_pb2.DeltaDiscoveryResponse]:
        """What to send now, in make-before-break order; marks each as sent."""
        if snapshot is None:
            return []
        versions = self._versions(snapshot)
        out = []
        for type_url in ORDER:
            st = self.types.get(type_url)
            if st is None:
                continue
            current = versions[type_url]
            wanted = self._wanted(st, current)
            st.resend &= set(wanted)
            send = [r for r in snapshot.resources[type_url]
                    if name_of(r) in wanted
                    and (st.has.get(name_of(r)) != wanted[name_of(r)] or name_of(r) in st.resend)
                    and (name_of(r), wanted[name_of(r)]) not in st.nacked]
            removed: list[str] = []
            waits = REMOVAL_WAITS_FOR.get(type_url)
            if waits is None or all(self._settled(w, versions) for w in waits):
                removed = sorted(n for n in st.has if n not in current)
            if not send and not removed:
                if st.reply_once:
                    out.append(self._response(st, type_url, snapshot, [], [], {}))
                elif not st.in_flight and st.acked == st.has == wanted:
                    st.acked_version = snapshot.versions[type_url]  # e.g. a reconnect holding it all
                continue
            out.append(self._response(st, type_url, snapshot, send, removed, wanted))
        return out

    def _response(self, st: DeltaTypeState, type_url: str, snapshot: Snapshot, send: list[Message],
                  removed: list[str], wanted: dict[str, str]) -> discovery_pb2.DeltaDiscoveryResponse:
        st.reply_once = False
        sent = {name_of(r): version_of((r,)) for r in send}
        before = {n: st.has.get(n) for n in [*sent, *removed]}
        st.has.update(sent)
        st.resend -= set(sent)
        endpoints = self.types.get(ENDPOINT)
        if type_url == CLUSTER and endpoints is not None:  # rebuilt clusters warm on their EDS
            endpoints.resend |= {n for n in sent if before[n] is not None}
        for name in removed:
            st.has.pop(name, None)
        version = snapshot.versions[type_url] if st.has == wanted else _held_version(st.has)
        self._nonce += 1
        nonce = str(self._nonce)
        st.in_flight[nonce] = Sent(version, sent, tuple(removed), before)
        while len(st.in_flight) > MAX_IN_FLIGHT:
            del st.in_flight[next(iter(st.in_flight))]
        self.resources_sent[type_url] += len(send)
        self.responses_sent += 1
        resp = discovery_pb2.DeltaDiscoveryResponse(system_version_info=version, type_url=type_url,
                                                   nonce=nonce, removed_resources=removed)
        for r in send:
            item = resp.resources.add(name=name_of(r), version=sent[name_of(r)])
            item.resource.Pack(r)
        return resp

    def known(self, snapshot: Snapshot | None) -> dict[str, str]:
        """The versions this stream is settled on, per subscribed type, for the cache watch."""
        return {t: (snapshot.versions[t] if snapshot else "") for t in self.types}
