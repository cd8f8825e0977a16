"""The pure parts of signing in: the token's expiry, the endpoint's place, the Secret's keys.

The session itself (signing in, renewing, a 401, an endpoint that is down) runs against the
test plane's sign-in service in tests/faults/test_signin.py.
"""

from __future__ import annotations

import base64
import json

import pytest

from shared_services import kubeconfig, signin


def _jwt(claims: object) -> str:
    def part(value: object) -> str:
        raw = json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    ("token", "exp"),
    [
        (_jwt({"exp": 1900000000, "sub": "a"}), 1900000000.0),
        (_jwt({"exp": 1900000000.5}), 1900000000.5),
        (_jwt({"sub": "no exp"}), None),
        (_jwt({"exp": "1900000000"}), None),
        (_jwt({"exp": True}), None),
        (_jwt(["not", "claims"]), None),
        ("opaque-session-id", None),
        ("a.%%%.c", None),
        ("a.bm90IGpzb24.c", None),
    ],
)
def test_the_expiry_is_read_from_the_jwt_or_not_at_all(token: str, exp: float | None) -> None:
    assert signin.expiry(token) == exp


@pytest.mark.parametrize(
    ("server", "url", "endpoint"),
    [
        ("https://192.0.2.10:6443", None, "https://192.0.2.10/wcp/login"),
        ("https://supervisor.example:6443/x", None, "https://supervisor.example/wcp/login"),
        ("https://[2001:db8::10]:6443", None, "https://[2001:db8::10]/wcp/login"),
        (
            "https://192.0.2.10:6443",
            "https://192.0.2.11:8443/wcp/login",
            "https://192.0.2.11:8443/wcp/login",
        ),
    ],
)
def test_the_endpoint_is_vspheres_place_on_the_servers_host_unless_given(
    server: str, url: str | None, endpoint: str
) -> None:
    assert signin.sign_in_url(server, url) == endpoint


CANARY = "QWERTYCANARYPASSWORD"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"password": CANARY}, "has no 'username'"),
        ({"username": "devops@vsphere.local"}, "has no 'password'"),
        ({"username": "a:b", "password": CANARY}, "holds a ':' in 'username'"),
        (
            {"username": "u", "password": CANARY + "\n"},
            "control character or line break in 'password'",
        ),
        ({"username": "u", "password": CANARY * 100}, "'password' longer than 1024"),
    ],
)
def test_unusable_credentials_name_the_secret_and_key_never_the_value(
    data: dict[str, str], says: str
) -> None:
    with pytest.raises(signin.SignInError) as raised:
        signin.credentials(data, secret="sso")
    assert raised.value.reason == signin.CREDENTIALS_INVALID
    assert says in raised.value.message
    assert "Secret sso" in raised.value.message
    assert CANARY not in raised.value.message


def test_credentials_are_kept_out_of_the_repr() -> None:
    held = signin.credentials({"username": "devops", "password": CANARY}, secret="sso")
    assert CANARY not in repr(held)
    assert "devops" not in repr(held)


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: sup
  cluster:
    server: https://192.0.2.10:6443
contexts:
- name: sup
  context:
    cluster: sup
current-context: sup
"""


def test_a_kubeconfig_without_a_user_serves_a_cluster_that_signs_in() -> None:
    config = kubeconfig.parse(KUBECONFIG, signs_in=True)
    assert config.server == "https://192.0.2.10:6443"
    assert config.credentials is None
    with pytest.raises(kubeconfig.CredentialsError, match=r"contexts\[0\].context.user is missing"):
        kubeconfig.parse(KUBECONFIG)


def test_the_kubeconfigs_user_is_not_used_when_signing_in() -> None:
    text = (
        KUBECONFIG.replace("    cluster: sup\ncurrent", "    cluster: sup\n    user: old\ncurrent")
        + "users:\n- name: old\n  user:\n    token: an-expired-session-token\n"
    )
    assert kubeconfig.parse(text, signs_in=True).credentials is None
    assert isinstance(kubeconfig.parse(text).credentials, kubeconfig.BearerToken)
