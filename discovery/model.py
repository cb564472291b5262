"""Cloud Map's model, pure: identifiers, ARNs, input validation and instance selection.

Nothing here touches the store or the network; :mod:`discovery.handlers` call these functions
and :mod:`discovery.resolver` and :mod:`discovery.index` share the value types.
"""

from __future__ import annotations

import ipaddress
import random
import re
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from discovery.errors import InvalidInput, ResourceLimitExceeded, TooManyTagsException

__all__ = [
    "DNS_TYPES",
    "HEALTH_INTERVAL_TAG",
    "MAX_ATTRIBUTES",
    "MAX_INSTANCES_PER_SERVICE",
    "Instance",
    "Namespace",
    "Service",
    "arn",
    "check_attributes",
    "check_dns_config",
    "check_health_check_config",
    "check_instance_for_service",
    "check_namespace_name",
    "check_service_name",
    "check_tags",
    "integer",
    "new_id",
    "select_instances",
    "storable",
    "text",
]

MAX_ATTRIBUTES = 30
MAX_ATTRIBUTE_KEY = 255
MAX_ATTRIBUTE_VALUE = 1024
MAX_INSTANCES_PER_SERVICE = 1000
MAX_TAGS = 50
DNS_TYPES = ("DNS_PRIVATE", "DNS_PUBLIC")
# Dockyard's extension: a service tag giving the health-check interval in seconds (1 to 300;
# Cloud Map itself fixes it at 30 s). The aws CLI validates HealthCheckConfig against its model,
# so an extra field there could not be sent; a tag can.
HEALTH_INTERVAL_TAG = "dockyard:health-check-interval"
DEFAULT_HEALTH_INTERVAL = 10.0

_ALNUM = string.ascii_lowercase + string.digits
_HTTP_NS_NAME = re.compile(r"^(?!arn:)[!-~]{1,1024}$")
_DNS_NAME = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?\.?$"
)
_SERVICE_NAME = re.compile(
    r"((?=^.{1,127}$)^([a-zA-Z0-9_][a-zA-Z0-9-_]{0,61}[a-zA-Z0-9_]|[a-zA-Z0-9])"
    r"(\.([a-zA-Z0-9_][a-zA-Z0-9-_]{0,61}[a-zA-Z0-9_]|[a-zA-Z0-9]))*$)|(^\.$)"
)
_INSTANCE_ID = re.compile(r"^[0-9a-zA-Z_/:.@-]{1,64}$")
_ATTR_VALUE = re.compile(r"^([a-zA-Z0-9!-~][ \ta-zA-Z0-9!-~]*){0,1}[a-zA-Z0-9!-~]{0,1}$")


@dataclass(frozen=True)
class Namespace:
    id: str
    arn: str
    name: str
    type: str  # HTTP | DNS_PRIVATE | DNS_PUBLIC
    description: str
    soa_ttl: int | None
    creator_request_id: str
    created_at: float
    service_count: int = 0

    @property
    def is_dns(self) -> bool:
        return self.type in DNS_TYPES


@dataclass(frozen=True)
class Service:
    id: str
    arn: str
    name: str
    namespace_id: str
    type: str  # HTTP | DNS_HTTP | DNS
    description: str
    dns_config: dict[str, Any] | None
    health_check: dict[str, Any] | None
    custom_health: dict[str, Any] | None
    creator_request_id: str
    created_at: float
    revision: int
    health_interval: float = DEFAULT_HEALTH_INTERVAL

    def ttl(self, record_type: str) -> int | None:
        """The TTL of this service's ``record_type`` record, or None if it has none."""
        for rec in (self.dns_config or {}).get("DnsRecords", []):
            if rec["Type"] == record_type:
                return int(rec["TTL"])
        return None

    @property
    def has_health(self) -> bool:
        return bool(self.health_check or self.custom_health)


@dataclass(frozen=True)
class Instance:
    service_id: str
    id: str
    attributes: dict[str, str]
    health: str  # HEALTHY | UNHEALTHY | UNKNOWN
    creator_request_id: str = ""
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def routable(self) -> bool:
        """Whether DNS and the mesh send traffic here (UNKNOWN means "not checked")."""
        return self.health != "UNHEALTHY"


def new_id(prefix: str) -> str:
    """``prefix`` + "-" + 16 random lowercase letters and digits (``ns-...``, ``srv-...``)."""
    return prefix + "-" + "".join(secrets.choice(_ALNUM) for _ in range(16))


def arn(region: str, account: str, kind: str, ident: str) -> str:
    return f"arn:aws:servicediscovery:{region}:{account}:{kind}/{ident}"


def _str(params: Mapping[str, Any], key: str, required: bool = False, maximum: int = 1024) -> str | None:
    value = params.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{key} is required.")
        return None
    if not isinstance(value, str) or len(value) > maximum:
        raise InvalidInput(f"{key} must be a string of at most {maximum} characters.")
    if not value.isascii() and not storable(value):  # isascii first: no call on the hot path
        raise InvalidInput(f"{key} must be Unicode text (it has a lone surrogate).")
    return value


def storable(value: str) -> bool:
    """Whether ``value`` is text the store can hold: JSON can carry a lone surrogate such as
    ``"\\ud800"``, which has no UTF-8 form. ``isascii`` is O(1), so ASCII costs nothing."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def text(params: Mapping[str, Any], key: str, required: bool = False, maximum: int = 1024) -> str | None:
    """A string parameter, validated for type and length (InvalidInput otherwise)."""
    return _str(params, key, required, maximum)


def integer(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """An optional integer parameter: ``default`` when absent or null; InvalidInput unless an
    int (not a bool) from ``low`` to ``high``. The same contract as ``runner/services.py``'s."""
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{key} must be an integer from {low} to {high}.")
    return value


def check_namespace_name(name: Any, kind: str) -> str:
    """A valid namespace name for ``kind`` (HTTP or a DNS type), lower-cased for DNS."""
    if not isinstance(name, str):
        raise InvalidInput("Name is required.")
    if kind == "HTTP":
        if not _HTTP_NS_NAME.match(name):
            raise InvalidInput(f"Namespace name {name!r} is not valid.")
        return name
    if len(name) > 253 or not _DNS_NAME.match(name) or name.startswith("arn:"):
        raise InvalidInput(f"Namespace name {name!r} is not a valid DNS name.")
    return name.rstrip(".").lower()


def check_service_name(name: Any) -> str:
    if not isinstance(name, str) or not _SERVICE_NAME.match(name):
        raise InvalidInput(f"Service name {name!r} is not valid.")
    return name


def check_instance_id(ident: Any) -> str:
    if not isinstance(ident, str) or not _INSTANCE_ID.match(ident):
        raise InvalidInput("InstanceId must be 1 to 64 characters of letters, digits and _/:.@-.")
    return ident


def check_tags(tags: Any, resource: str = "") -> list[dict[str, str]]:
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise InvalidInput("Tags must be a list.")
    out: dict[str, str] = {}
    for t in tags:
        if not isinstance(t, dict):
            raise InvalidInput("Each tag must be an object with Key and Value.")
        key, value = t.get("Key"), t.get("Value")
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise InvalidInput("A tag Key must have 1 to 128 characters.")
        if not isinstance(value, str) or len(value) > 256:
            raise InvalidInput("A tag Value must have at most 256 characters.")
        if not storable(key) or not storable(value):
            raise InvalidInput("A tag Key or Value has a lone surrogate.")
        out[key] = value
    if len(out) > MAX_TAGS:
        raise TooManyTagsException(f"A resource can have at most {MAX_TAGS} tags.")
    return [{"Key": k, "Value": v} for k, v in out.items()]


def merge_tags(old: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {t["Key"]: t["Value"] for t in old}
    merged.update({t["Key"]: t["Value"] for t in new})
    if len(merged) > MAX_TAGS:
        raise TooManyTagsException(f"A resource can have at most {MAX_TAGS} tags.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def health_interval(tags: Iterable[Mapping[str, str]]) -> float:
    """The check interval from the :data:`HEALTH_INTERVAL_TAG` tag (InvalidInput if malformed)."""
    for t in tags:
        if t["Key"] == HEALTH_INTERVAL_TAG:
            try:
                value = float(t["Value"])
            except ValueError:
                value = -1.0
            if not 1 <= value <= 300:
                raise InvalidInput(f"Tag {HEALTH_INTERVAL_TAG} must be a number of seconds from 1 to 300.")
            return value
    return DEFAULT_HEALTH_INTERVAL


def check_soa_ttl(properties: Any) -> int | None:
    """The SOA TTL from a namespace's ``Properties`` (None when not given)."""
    if properties is None:
        return None
    try:
        ttl = properties["DnsProperties"]["SOA"]["TTL"]
    except (TypeError, KeyError):
        raise InvalidInput("Properties must be {DnsProperties: {SOA: {TTL: seconds}}}.") from None
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 2147483647:
        raise InvalidInput("SOA TTL must be an integer from 0 to 2147483647.")
    return ttl


def _records(records: Any) -> list[dict[str, Any]]:
    if not isinstance(records, list) or not records:
        raise InvalidInput("DnsRecords must be a non-empty list.")
    out, seen = [], set()
    for rec in records:
        if not isinstance(rec, dict) or rec.get("Type") not in ("A", "AAAA", "SRV", "CNAME"):
            raise InvalidInput("Each DnsRecord needs a Type of A, AAAA, SRV or CNAME.")
        ttl = rec.get("TTL")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 2147483647:
            raise InvalidInput("Each DnsRecord needs a TTL from 0 to 2147483647.")
        if rec["Type"] in seen:
            raise InvalidInput(f"DnsRecords has two records of type {rec['Type']}.")
        seen.add(rec["Type"])
        out.append({"Type": rec["Type"], "TTL": ttl})
    if "CNAME" in seen and len(seen) > 1:
        raise InvalidInput("A CNAME record cannot be combined with other record types.")
    return out


def check_dns_config(config: Any, update: bool = False) -> dict[str, Any]:
    """A valid DnsConfig (RoutingPolicy defaults to MULTIVALUE)."""
    if not isinstance(config, dict):
        raise InvalidInput("DnsConfig must be an object.")
    records = _records(config.get("DnsRecords"))
    out: dict[str, Any] = {"DnsRecords": records}
    if update:
        return out
    policy = config.get("RoutingPolicy", "MULTIVALUE")
    if policy not in ("MULTIVALUE", "WEIGHTED"):
        raise InvalidInput("RoutingPolicy must be MULTIVALUE or WEIGHTED.")
    if any(r["Type"] == "CNAME" for r in records) and policy != "WEIGHTED":
        raise InvalidInput("A CNAME record requires the WEIGHTED routing policy.")
    out["RoutingPolicy"] = policy
    if isinstance(config.get("NamespaceId"), str):
        out["NamespaceId"] = config["NamespaceId"]
    return out


def _threshold(config: Mapping[str, Any]) -> int:
    value = config.get("FailureThreshold", 1)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
        raise InvalidInput("FailureThreshold must be an integer from 1 to 10.")
    return value


def check_health_check_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict) or config.get("Type") not in ("HTTP", "HTTPS", "TCP"):
        raise InvalidInput("HealthCheckConfig needs a Type of HTTP, HTTPS or TCP.")
    out: dict[str, Any] = {"Type": config["Type"], "FailureThreshold": _threshold(config)}
    path = config.get("ResourcePath")
    if config["Type"] == "TCP":
        if path is not None:
            raise InvalidInput("ResourcePath is not allowed for a TCP health check.")
    else:
        if path is None:
            path = "/"
        if not isinstance(path, str) or len(path) > 255 or not path.startswith("/"):
            raise InvalidInput("ResourcePath must be a path starting with / of at most 255 characters.")
        out["ResourcePath"] = path
    return out


def check_custom_health_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InvalidInput("HealthCheckCustomConfig must be an object.")
    return {"FailureThreshold": _threshold(config)} if "FailureThreshold" in config else {}


def check_attributes(attributes: Any) -> dict[str, str]:
    """Instance attributes within Cloud Map's limits (30 keys, 255/1,024 characters)."""
    if not isinstance(attributes, dict):
        raise InvalidInput("Attributes is required and must be a map of strings.")
    if len(attributes) > MAX_ATTRIBUTES:
        raise ResourceLimitExceeded(f"An instance can have at most {MAX_ATTRIBUTES} attributes.")
    out: dict[str, str] = {}
    for key, value in attributes.items():
        if not 1 <= len(key) <= MAX_ATTRIBUTE_KEY:
            raise InvalidInput(f"Attribute keys must have 1 to {MAX_ATTRIBUTE_KEY} characters.")
        if not storable(key):
            raise InvalidInput("An attribute key has a lone surrogate.")
        if not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput(
                f"Attribute {key[:64]!r}: values must be strings of at most {MAX_ATTRIBUTE_VALUE} characters."
            )
        if not _ATTR_VALUE.match(value):
            raise InvalidInput(f"Attribute {key[:64]!r} has characters Cloud Map does not allow.")
        out[key] = value
    return out


def check_instance_for_service(attributes: Mapping[str, str], service: Service) -> None:
    """The AWS_INSTANCE_* attributes that the service's records and health check need."""
    ipv4, ipv6 = attributes.get("AWS_INSTANCE_IPV4"), attributes.get("AWS_INSTANCE_IPV6")
    port = attributes.get("AWS_INSTANCE_PORT")
    if ipv4 is not None:
        try:
            ipaddress.IPv4Address(ipv4)
        except ValueError:
            raise InvalidInput(f"AWS_INSTANCE_IPV4 {ipv4!r} is not an IPv4 address.") from None
    if ipv6 is not None:
        try:
            ipaddress.IPv6Address(ipv6)
        except ValueError:
            raise InvalidInput(f"AWS_INSTANCE_IPV6 {ipv6!r} is not an IPv6 address.") from None
    if port is not None and (not port.isdigit() or not 1 <= int(port) <= 65535):
        raise InvalidInput(f"AWS_INSTANCE_PORT {port!r} must be a port from 1 to 65535.")
    types = {r["Type"] for r in (service.dns_config or {}).get("DnsRecords", [])}
    alias = attributes.get("AWS_ALIAS_DNS_NAME")
    if "A" in types and ipv4 is None and alias is None and not ("AAAA" in types and ipv6):
        raise InvalidInput("This service has an A record: AWS_INSTANCE_IPV4 is required.")
    if "AAAA" in types and ipv6 is None and alias is None and not ("A" in types and ipv4):
        raise InvalidInput("This service has an AAAA record: AWS_INSTANCE_IPV6 is required.")
    if "SRV" in types and (port is None or (ipv4 is None and ipv6 is None)):
        raise InvalidInput("This service has an SRV record: AWS_INSTANCE_PORT and an IP are required.")
    if "CNAME" in types and "AWS_INSTANCE_CNAME" not in attributes:
        raise InvalidInput("This service has a CNAME record: AWS_INSTANCE_CNAME is required.")
    if service.health_check and (port is None or ipv4 is None):
        raise InvalidInput("A health-checked service needs AWS_INSTANCE_IPV4 and AWS_INSTANCE_PORT.")


def _matches(attrs: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(attrs.get(k) == v for k, v in wanted.items())


def select_instances(
    instances: Sequence[Instance],
    service: Service,
    health_status: str = "HEALTHY",
    query: Mapping[str, str] | None = None,
    optional: Mapping[str, str] | None = None,
    max_results: int = 100,
    rng: random.Random | None = None,
) -> list[Instance]:
    """DiscoverInstances' selection.

    Every QueryParameter must match; then the health filter (ignored for services without a
    health check; HEALTHY_OR_ELSE_ALL gives the healthy ones, or all when none is healthy);
    then OptionalParameters narrow what the health filter left, only when at least one of those
    instances matches them all, so they never empty a non-empty result. At most
    ``max_results`` instances, in random order when there are more (as Cloud Map does).
    """
    chosen = [i for i in instances if _matches(i.attributes, query or {})]
    if service.has_health and health_status != "ALL":
        healthy = [i for i in chosen if i.health != "UNHEALTHY"]
        if health_status == "HEALTHY":
            chosen = healthy
        elif health_status == "UNHEALTHY":
            chosen = [i for i in chosen if i.health == "UNHEALTHY"]
        elif health_status == "HEALTHY_OR_ELSE_ALL" and healthy:
            chosen = healthy
    if optional:
        narrowed = [i for i in chosen if _matches(i.attributes, optional)]
        if narrowed:
            chosen = narrowed
    if len(chosen) > max_results:
        chosen = (rng or random).sample(chosen, max_results)
    return chosen
