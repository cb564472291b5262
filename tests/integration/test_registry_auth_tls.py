"""TLS on the registry port: a given certificate and key, and ``--tls-self-signed``."""

from __future__ import annotations

import os
import stat

import pytest
import requests
from cryptography import x509

from dockyard.tls import make_self_signed
from tests.support.registry_auth import DockerLogin, bearer, challenge, create_user, fetch_token


def https(server) -> str:
    return f"https://127.0.0.1:{server.ports['registry']}"


def test_self_signed_tls_is_made_on_first_start_kept_and_serves_the_token_flow(fresh_dockyard):
    server = fresh_dockyard
    server.extra_args = ["--tls-self-signed"]
    server.start()
    assert f"dockyard: registry  https://127.0.0.1:{server.ports['registry']}/v2/" in server.output
    cert, key = server.data_dir / "tls-self-signed.crt", server.data_dir / "tls-self-signed.key"
    printed = f"dockyard: self-signed registry certificate {cert}"
    assert any(line.startswith(printed) for line in server.output)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)

    resp = requests.get(f"{https(server)}/v2/", verify=str(cert), timeout=10)
    assert resp.status_code == 401
    assert challenge(resp)["realm"] == f"{https(server)}/token"
    create_user(server, "tls-user", "tls-pw", admin=True)
    token = fetch_token(https(server), user="tls-user", password="tls-pw", verify=str(cert)).json()["token"]
    assert requests.get(f"{https(server)}/v2/", headers=bearer(token), verify=str(cert), timeout=10).ok
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.ports['registry']}/v2/", timeout=10)

    first = cert.read_bytes()
    server.stop()
    server.start()
    assert cert.read_bytes() == first
    assert requests.get(f"{https(server)}/v2/", headers=bearer(token), verify=str(cert), timeout=10).ok


def test_a_given_certificate_and_key_serve_the_registry_and_docker_logs_in_over_tls(fresh_dockyard, tmp_path):
    cert_pem, key_pem = make_self_signed("127.0.0.1")
    cert, key = tmp_path / "given.crt", tmp_path / "given.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    server = fresh_dockyard
    server.extra_args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    server.start()
    assert not (server.data_dir / "tls-self-signed.crt").exists()
    resp = requests.get(f"{https(server)}/v2/", verify=str(cert), timeout=10)
    assert resp.status_code == 401 and challenge(resp)["realm"].startswith("https://")
    create_user(server, "tls-docker", "tls-docker-pw", "tls/=pull,push")
    docker = DockerLogin()
    try:
        ok = docker.login(server.registry, "tls-docker", "tls-docker-pw")
        assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
        bad = docker.login(server.registry, "tls-docker", "wrong")
        assert bad.returncode != 0
    finally:
        docker.close()
