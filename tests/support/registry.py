"""How registry tests reach Dockyard's registry: every request and every client goes through here.

* :class:`RegistryClient`: plain HTTP (``requests``) against ``/v2/...``, answering a
  ``WWW-Authenticate: Bearer`` challenge with a token from the realm (with ``credentials`` if
  given), as docker does; plus small helpers that push blobs, manifests and images.
* ``docker_push`` / ``docker_pull``, ``skopeo_copy`` and ``oras_registry`` run the real clients
  against a :class:`~tests.support.server.Dockyard`.

Registry auth is on: by default every client acts as the test admin user (created on first use
by :func:`tests.support.registry_auth.ensure_admin`); docker runs with a ``DOCKER_CONFIG`` of
the server's own, logged in once (:func:`tests.support.registry_auth.docker_env`).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
from collections.abc import Iterable
from typing import Any

import requests

from registry.routes import route
from tests.support.registry_auth import docker_env, ensure_admin, fetch_token
from tests.support.server import Dockyard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


class RegistryClient:
    """HTTP against one registry; paths are ``/v2/...`` or a ``Location`` it returned."""

    def __init__(
        self, server: Dockyard, credentials: tuple[str, str] | None = None, anonymous: bool = False
    ) -> None:
        """As ``credentials`` if given, else anonymously if ``anonymous``, else as the admin."""
        self.base = server.registry_url
        self.credentials = credentials or (None if anonymous else ensure_admin(server))
        self.session = requests.Session()
        self._tokens: dict[str, str] = {}

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 300)
        headers = dict(kwargs.pop("headers", None) or {})
        explicit = "Authorization" in headers
        target = route(self.url(path).removeprefix(self.base).split("?")[0])
        repository = target.name if target else ""
        if not explicit and repository not in self._tokens and hasattr(kwargs.get("data"), "__next__"):
            self._tokens[repository] = self.token(repository)  # a streamed body cannot be replayed
        if not explicit and repository in self._tokens:
            headers["Authorization"] = f"Bearer {self._tokens[repository]}"
        r = self.session.request(method, self.url(path), headers=headers, **kwargs)
        challenge = r.headers.get("WWW-Authenticate", "")
        if r.status_code == 401 and challenge.startswith("Bearer ") and not explicit:
            token = self._tokens[repository] = self._token(dict(_PARAM.findall(challenge)))
            headers["Authorization"] = f"Bearer {token}"
            r = self.session.request(method, self.url(path), headers=headers, **kwargs)
        return r

    def token(self, repository: str) -> str:
        """A token for pull, push and delete on ``repository`` (realm from ``/v2/``'s challenge)."""
        challenge = self.session.get(self.url("/v2/"), timeout=30).headers.get("WWW-Authenticate", "")
        params = dict(_PARAM.findall(challenge))
        params["scope"] = f"repository:{repository}:pull,push,delete"
        return self._token(params)

    def raw(self, request_head: str, body: bytes = b"", repository: str = "") -> socket.socket:
        """Send a hand-written HTTP request (``request_head`` without the blank line; a token
        for ``repository`` is added) and ``body``, as is; returns the open socket."""
        host, port = self.base.removeprefix("http://").rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=60)
        head = request_head.rstrip("\r\n") + f"\r\nHost: {host}:{port}\r\n"
        if repository:
            head += f"Authorization: Bearer {self.token(repository)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + body)
        return sock

    def _token(self, params: dict[str, str]) -> str:
        realm = params.pop("realm")
        r = self.session.get(realm, params=params, auth=self.credentials, timeout=30)
        r.raise_for_status()
        return r.json()["token"]

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> requests.Response:
        return self.request("HEAD", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # -- helpers -------------------------------------------------------------------------
    def push_blob(self, name: str, data: bytes) -> str:
        """Monolithic upload of ``data`` to ``name``; returns its digest."""
        digest = sha256(data)
        r = self.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, data=data)
        assert r.status_code == 201, (r.status_code, r.text)
        return digest

    def push_manifest(
        self, name: str, reference: str, manifest: dict[str, Any] | bytes, media_type: str = OCI_MANIFEST
    ) -> requests.Response:
        body = manifest if isinstance(manifest, bytes) else canonical(manifest)
        return self.put(f"/v2/{name}/manifests/{reference}", data=body, headers={"Content-Type": media_type})

    def push_image(
        self, name: str, reference: str, layers: Iterable[bytes], config: bytes = b"{}", **extra: Any
    ) -> tuple[str, bytes]:
        """Push ``layers`` and ``config`` then an OCI manifest; returns (digest, manifest bytes)."""
        descriptors = [descriptor(OCI_LAYER, self._pushed(name, layer)) for layer in layers]
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, self._pushed(name, config)),
            "layers": descriptors,
            **extra,
        }
        body = canonical(doc)
        r = self.push_manifest(name, reference, body)
        assert r.status_code == 201, (r.status_code, r.text)
        return r.headers["Docker-Content-Digest"], body

    def _pushed(self, name: str, data: bytes) -> bytes:
        self.push_blob(name, data)
        return data


def _run(args: list[str], **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    return proc


def docker_push(server: Dockyard, local_image: str, reference: str) -> str:
    """Tag ``local_image`` as ``<registry>/<reference>`` and ``docker push`` it; returns that name."""
    remote = f"{server.registry}/{reference}"
    _run(["docker", "tag", local_image, remote])
    _run(["docker", "push", remote], env=docker_env(server))
    return remote


def docker_pull(server: Dockyard, reference: str) -> str:
    remote = f"{server.registry}/{reference}"
    _run(["docker", "pull", remote], env=docker_env(server))
    return remote


def docker_rmi(*images: str) -> None:
    subprocess.run(["docker", "rmi", "-f", *images], capture_output=True)


def skopeo_copy(server: Dockyard, source: str, dest: str, *extra: str) -> None:
    """``skopeo copy`` between transports; ``docker://`` refs name this registry without TLS
    and use the test admin's credentials."""
    creds = ":".join(ensure_admin(server))
    auth = [f"--src-creds={creds}"] if source.startswith("docker://") else []
    auth += [f"--dest-creds={creds}"] if dest.startswith("docker://") else []
    _run(["skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", *auth, *extra, source, dest])


def skopeo_ref(server: Dockyard, reference: str) -> str:
    return f"docker://{server.registry}/{reference}"


def oras_registry(server: Dockyard, repository: str | None = None) -> Any:
    """An oras-py ``Registry`` provider for this registry over plain HTTP.

    oras-py keeps its first token and asks for a new one only on 403, while a token lacking a
    scope gets 401 ``DENIED``: given ``repository``, start with a pull+push token for it.
    """
    import oras.provider

    registry = oras.provider.Registry(server.registry, insecure=True)
    user, password = ensure_admin(server)
    registry.auth.set_basic_auth(user, password)
    if repository is not None:
        scope = f"repository:{repository}:pull,push"
        r = fetch_token(server.registry_url, scope, user=user, password=password)
        registry.auth.set_token_auth(r.json()["token"])
    return registry
