"""The self-signed certificate: names, key mode, reuse, and renewal."""

import datetime
import os
import ssl
import stat

from cryptography import x509

from dockyard import tls


def sans(pem: bytes) -> x509.SubjectAlternativeName:
    cert = x509.load_pem_x509_certificate(pem)
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_the_certificate_names_loopback_and_the_configured_host():
    cert, _ = tls.make_self_signed("registry.example")
    names = sans(cert)
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "registry.example"]
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


def test_an_ip_host_is_named_as_an_ip_address():
    names = sans(tls.make_self_signed("10.1.2.3")[0])
    assert "10.1.2.3" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}


def test_the_pair_loads_into_an_ssl_context(tmp_path):
    cert, key = tls.ensure_self_signed(tmp_path, "127.0.0.1")
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_the_pair_is_reused_while_it_still_fits(tmp_path):
    cert, _ = tls.ensure_self_signed(tmp_path, "127.0.0.1")
    first = open(cert, "rb").read()
    tls.ensure_self_signed(tmp_path, "127.0.0.1")
    assert open(cert, "rb").read() == first


def test_a_new_host_or_an_expiring_certificate_makes_a_new_pair(tmp_path):
    cert, _ = tls.ensure_self_signed(tmp_path, "127.0.0.1")
    first = open(cert, "rb").read()
    tls.ensure_self_signed(tmp_path, "registry.example")
    second = open(cert, "rb").read()
    assert second != first and "registry.example" in sans(second).get_values_for_type(x509.DNSName)
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=tls.VALID_DAYS)
    expiring, _ = tls.make_self_signed("registry.example", now=old)
    (tmp_path / tls.CERT_FILE).write_bytes(expiring)
    tls.ensure_self_signed(tmp_path, "registry.example")
    assert open(cert, "rb").read() != expiring
