"""Configuration: defaults, then a TOML file, then ``DOCKYARD_*`` variables, then flags.

Every key of :class:`Config` can be set in each layer:

* TOML file: ``--config PATH`` or ``$DOCKYARD_CONFIG``, else ``<data_dir>/dockyard.toml`` if
  present; top-level keys named as the fields below (``control_port = 9080``).
* environment: ``DOCKYARD_<FIELD>`` upper-cased (``DOCKYARD_CONTROL_PORT=9080``).
* command-line flags of ``dockyard up`` (``--control-port 9080``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Config", "ConfigError", "default_data_dir", "load"]


class ConfigError(Exception):
    """A configuration value is missing or malformed (the CLI prints it as one line)."""


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "dockyard")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    data_dir: str = ""
    # where the state lives (dockyard.store.open_state, docs/scaling.md): "" for SQLite in the
    # data dir (state.db), or postgresql://user:pass@host:port/db
    state_url: str = ""
    registry_port: int = 5000
    control_port: int = 8080
    xds_port: int = 18000
    dns_port: int = 8053
    region: str = "us-east-1"
    account_id: str = "000000000000"
    log_level: str = "info"
    tls_cert: str = ""
    tls_key: str = ""
    tls_self_signed: bool = False
    registry_workers: int = 1
    control_workers: int = 1
    gc_interval: float = 3600.0
    lifecycle_interval: float = 3600.0  # seconds between applications of ECR lifecycle policies (0: never)
    gc_grace: float = 3600.0
    registry_read_only: bool = False
    registry_create_on_push: bool = True  # a push to an unknown repository creates it (as ECR's templates)
    # Blob storage (docs/storage-s3.md): "" keeps blobs under <data_dir>/registry; "s3://bucket/prefix"
    # puts them in an S3-compatible bucket at ``s3_endpoint`` ("": AWS_ENDPOINT_URL_S3 or
    # AWS_ENDPOINT_URL, else AWS), in ``s3_region`` ("": AWS_REGION / AWS_DEFAULT_REGION, else
    # us-east-1), with the key given here or botocore's chain (AWS_ACCESS_KEY_ID, ...); uploads go in
    # parts of ``s3_part_size`` bytes. ``blob_redirect`` answers blob GETs with a 307 to a URL
    # pre-signed for ``blob_redirect_expiry`` s (Distribution's ``redirect``), else streams them.
    blob_url: str = ""
    s3_endpoint: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_part_size: int = 8 * 1024 * 1024
    blob_redirect: bool = False
    blob_redirect_expiry: float = 1200.0
    # ECR pull-through cache (registry/pullthrough/): seconds before a cached tag is checked
    # upstream again (ECR: 24 h; 0: at every pull), and the bound of each upstream request
    pull_through_refresh: float = 86400.0
    # Image pre-warming (docs/runner-services.md): a deployment pulls its images on the cluster's
    # instances before placing tasks, at most ``prewarm_concurrency`` pulls at a time, waiting at
    # most ``prewarm_timeout`` s; a task within ``prewarm_fresh`` s of its image's pre-pull on its
    # host does not pull again; ``prewarm_on_register`` also pre-pulls each new task definition
    # revision on every connected instance. ``prewarm_timeout = 0`` turns pre-warming off.
    prewarm_concurrency: int = 4
    prewarm_timeout: float = 600.0
    prewarm_fresh: float = 3600.0
    prewarm_on_register: bool = False
    # Application Auto Scaling (docs/autoscaling.md): seconds between two passes of the loop, and
    # the period of the metric datapoints target tracking judges (AWS: 60)
    autoscaling_interval: float = 10.0
    autoscaling_period: float = 60.0
    pull_through_timeout: float = 30.0
    docker_host: str = ""
    agent_timeout: float = 30.0
    access_log: str = "true"  # true: JSON lines on stderr; false: none; else a file path
    task_dns: str = "auto"  # tasks' nameserver: auto (each local engine's bridge gateway), off, or an IP
    task_dns_upstream: str = "/etc/resolv.conf"  # other names go to: a resolv.conf, none, ip[:port],...
    # The trust model of tasks (docs/security.md): clusters whose tasks may have host access
    # (privileged, host network/PID/IPC, any host path; comma-separated names or patterns such
    # as infra-*, * for all) and
    # the host directories any task may mount (comma-separated absolute paths).
    host_access_clusters: str = ""
    host_paths: str = ""
    # bounds of the aiohttp listeners, each port (dockyard.listeners); 0 connections: from the
    # open-file limit
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    http_keepalive_timeout: float = 75.0
    http_max_connections: int = 0
    secrets_key_file: str = ""  # the key sealing secrets at rest (dockyard.sealed); "": in the data dir
    metrics_key: str = ""  # "": /metrics is open; else it needs ``Authorization: Bearer <key>``
    # Task roles (runner/taskcreds.py): where the container credentials endpoint listens (an
    # address the tasks' containers reach; port 0: any free one) and how long credentials last.
    task_credentials_host: str = "172.17.0.1"
    task_credentials_port: int = 0
    task_role_seconds: float = 3600.0
    mesh_delta: bool = False  # sidecars ask for incremental (delta) xDS instead of state of the world
    # a meshed task's stop waits at most this long (seconds) for every other sidecar to ACK
    # endpoints without it before its app stops (runner.agent.worker); 0: no drain
    mesh_drain_timeout: float = 10.0
    # mTLS between sidecars (docs/mtls.md): the SPIFFE trust domain of the tasks' identities and
    # the lifetime (seconds) of the certificates the mesh CA issues them (renewed at half of it)
    mesh_trust_domain: str = "dockyard.local"
    mesh_cert_lifetime: float = 3600.0
    # how often each sidecar streams its stats to the control plane (docs/telemetry.md); 0: never
    mesh_stats_flush_interval: float = 10.0
    alarm_evaluation_interval: float = 10.0  # seconds between two evaluations of every alarm
    # CloudWatch Logs (runner/logs, docs/logs.md): the most bytes the log store keeps over all
    # groups (the oldest events go first beyond it), and seconds between retention passes
    logs_max_bytes: int = 2 * 1024**3
    logs_retention_interval: float = 60.0
    # Traces (docs/traces.md): where the sidecars send Zipkin v2 spans ("": Dockyard's own
    # collector, /api/v2 on the control port; else a Zipkin URL, http://zipkin:9411 or a full
    # .../api/v2/spans), the percentage of requests traced (0: tracing off), and the bounds of
    # the collector's in-memory store and of one POST body (bytes)
    trace_collector: str = ""
    trace_sampling: float = 100.0
    trace_max_spans: int = 50_000
    trace_max_bytes: int = 32 * 1024 * 1024
    trace_max_age: float = 3600.0
    trace_max_body: int = 1024 * 1024
    # seconds in one of the API's minutes for deployment bake times and hook timeouts
    # (canaryBakeTimeInMinutes, stepBakeTimeInMinutes, bakeTimeInMinutes; docs/deployments.md):
    # 60 as in ECS; smaller for tests and demos
    deployment_minute_seconds: float = 60.0
    # EventBridge (runner/eventbridge, docs/events.md): seconds in a schedule's minute (rate()
    # rules fire every N of them; 60 as on AWS, smaller for tests and demos), and the first
    # retry delay of a failed target invocation (doubled on each retry)
    events_minute_seconds: float = 60.0
    events_retry_seconds: float = 1.0
    # The edge (edge/, docs/edge.md): the ports load balancers' listeners may use (ranges and
    # ports, comma-separated) and the address they listen on ("": ``host``)
    edge_ports: str = "8000-8999"
    edge_host: str = ""

    def address(self, port: int) -> str:
        """``host:port`` for a listener on the configured host (brackets for IPv6)."""
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        return self.data_path / "state.db"

    @property
    def state_target(self) -> str | Path:
        """What :func:`dockyard.store.open_state` opens: ``state_url``, else the SQLite file."""
        return self.state_url or self.db_path

    @property
    def key_path(self) -> Path:
        """The secrets key file (:mod:`dockyard.sealed`)."""
        return Path(self.secrets_key_file) if self.secrets_key_file else self.data_path / "secrets.key"

    @property
    def credentials_path(self) -> Path:
        return self.data_path / "admin-credentials"


_FIELDS = {f.name: f for f in fields(Config)}


def _coerce(name: str, value: Any) -> Any:
    kind = type(getattr(Config(), name))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is str and isinstance(value, bool):
            return "true" if value else "false"  # TOML's access_log = false
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config {name}: {value!r} is not a valid {kind.__name__}") from None


def load(
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    env: dict[str, str] | None = None,
) -> Config:
    """Build the effective configuration (see module docstring for precedence)."""
    env = dict(os.environ) if env is None else env
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values: dict[str, Any] = {}
    from_env = {
        name: env[f"DOCKYARD_{name.upper()}"] for name in _FIELDS if f"DOCKYARD_{name.upper()}" in env
    }
    data_dir = overrides.get("data_dir") or from_env.get("data_dir") or default_data_dir()
    path = config_file or env.get("DOCKYARD_CONFIG")
    if not path and (Path(data_dir) / "dockyard.toml").exists():
        path = str(Path(data_dir) / "dockyard.toml")
    if path:
        try:
            with open(path, "rb") as f:
                values.update(tomllib.load(f))
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"config file {path}: unknown keys {', '.join(unknown)}")
    values.update(from_env)
    values.update(overrides)
    values.setdefault("data_dir", data_dir)
    cfg = replace(Config(), **{k: _coerce(k, v) for k, v in values.items()})
    for port in ("registry_port", "control_port", "xds_port", "dns_port"):
        if not 0 <= getattr(cfg, port) <= 65535:
            raise ConfigError(f"config {port}: {getattr(cfg, port)} is not a TCP/UDP port")
    if not 0 <= cfg.trace_sampling <= 100:
        raise ConfigError(f"config trace_sampling: {cfg.trace_sampling} is not a percentage (0-100)")
    for name in ("trace_max_spans", "trace_max_bytes", "trace_max_age", "trace_max_body"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"config {name}: {getattr(cfg, name)} must be positive")
    if cfg.state_url:
        _check_state_url(cfg.state_url)
    if cfg.trace_collector:
        url = urlsplit(cfg.trace_collector)
        if url.scheme != "http" or not url.hostname or url.query or url.fragment:
            raise ConfigError(f"config trace_collector: {cfg.trace_collector!r} is not an http:// URL "
                              "of a Zipkin collector (http://host:9411 or http://host:9411/api/v2/spans)")
        try:
            url.port  # noqa: B018 (raises ValueError when out of range)
        except ValueError:
            raise ConfigError(f"config trace_collector: {cfg.trace_collector!r} has a bad port") from None
    return cfg


def _check_state_url(value: str) -> None:
    """The form of a ``state_url`` (whether the server answers is known only at start)."""
    url = urlsplit(value)
    shown = value.replace(f":{url.password}@", ":***@", 1) if url.password else value
    if url.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"config state_url: {shown!r} is not a postgresql:// URL "
                          "(postgresql://user:pass@host:port/db; leave it empty for SQLite)")
    try:
        url.port  # noqa: B018 (raises ValueError when out of range)
    except ValueError:
        raise ConfigError(f"config state_url: {shown!r} has a bad port") from None
    if not url.path.strip("/"):
        raise ConfigError(f"config state_url: {shown!r} names no database (postgresql://user:pass@host:port/db)")
