"""The driver a registry runs on, from its configuration (Distribution's ``factory``).

``blob_url`` empty: the filesystem driver under ``<data_dir>/registry``. ``s3://bucket/prefix``:
the S3 driver, checked at once (the bucket reached and listed), so that a malformed URL, an
unreachable endpoint, wrong credentials or a missing bucket stop the start with one line
naming what is wrong (a ``ConfigError``), never a half-initialised server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dockyard.config import Config, ConfigError
from registry.storage.driver.base import StorageDriver
from registry.storage.driver.filesystem import FilesystemDriver

__all__ = ["open_driver"]

MAX_PART = 5 << 30  # S3's largest part


def open_driver(config: Config, env: Mapping[str, str] | None = None) -> StorageDriver:
    """The configured driver, reachable; raises ConfigError saying what is wrong."""
    if not config.blob_url:
        return FilesystemDriver(config.data_path / "registry")
    from registry.storage.driver.s3 import MIN_PART, S3Driver, StorageUnavailable, make_client, parse_blob_url

    env = os.environ if env is None else env
    try:
        location = parse_blob_url(config.blob_url)
    except ValueError as exc:
        raise ConfigError(f"config blob_url: {exc}") from None
    if not MIN_PART <= config.s3_part_size <= MAX_PART:
        size = config.s3_part_size
        raise ConfigError(f"config s3_part_size: {size} is not between {MIN_PART} and {MAX_PART} bytes")
    if config.blob_redirect_expiry <= 0 or config.blob_redirect_expiry > 7 * 86400:
        raise ConfigError(f"config blob_redirect_expiry: {config.blob_redirect_expiry} is not 0-604800 s")
    endpoint = config.s3_endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"config s3_endpoint: {endpoint!r} is not an http:// or https:// URL")
    if bool(config.s3_access_key_id) != bool(config.s3_secret_access_key):
        raise ConfigError("config s3_access_key_id and s3_secret_access_key go together: set both or neither")
    region = config.s3_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        client = make_client(endpoint, region, config.s3_access_key_id, config.s3_secret_access_key)
    except ValueError as exc:  # botocore refuses a malformed endpoint or region
        raise ConfigError(f"config blob_url {location.url}: {exc}") from None
    driver = S3Driver(client, location.bucket, location.prefix, config.s3_part_size)
    try:
        driver.check()
    except StorageUnavailable as exc:
        raise ConfigError(f"config blob_url {exc}") from None
    return driver
