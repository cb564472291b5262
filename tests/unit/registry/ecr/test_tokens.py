"""The ECR login password and the layer download token: signed, scoped and short-lived."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from registry.ecr.tokens import LAYER_TTL, LOGIN_TTL, Signer


def signer(now: list[float]) -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()), clock=lambda: now[0])


def test_a_login_password_names_its_key_for_12_hours():
    now = [1_000_000.0]
    s = signer(now)
    password, expires = s.login_password("AKIDEXAMPLE")
    assert expires == 1_000_000 + LOGIN_TTL == 1_000_000 + 12 * 3600
    assert s.login_of(password) == ("AKIDEXAMPLE", "")
    now[0] += LOGIN_TTL + 120
    assert s.login_of(password) is None


def test_a_token_of_one_kind_or_one_key_is_not_taken_for_another():
    now = [1_000_000.0]
    s, other = signer(now), signer(now)
    password, _ = s.login_password("AKID")
    layer = s.layer_token("shop/web", "sha256:" + "a" * 64)
    assert s.layer_of(layer) == ("shop/web", "sha256:" + "a" * 64)
    assert s.layer_of(password) is None and s.login_of(layer) is None
    assert other.login_of(password) is None
    assert s.login_of(password[:-2] + "AA") is None
    now[0] += LAYER_TTL + 120
    assert s.layer_of(layer) is None
