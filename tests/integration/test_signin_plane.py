"""The supervisor signs SSO users in as a vSphere Supervisor's ``/wcp/login`` does, and its API
server trusts what it mints: the test plane that the operator's vSphere sign-in is tested on.

A good password gives a JWT that the API server takes as ``sso:<user>``, which reads where the
user is bound to ``view`` and nowhere else; a wrong password, an unknown or locked user get a
401 and no token; a token past its ``exp`` is answered 401, which the audit log records; a
stopped service refuses connections, and started again signs in with the same key, while the
tokens it gave keep working. The password goes to ``/wcp/login`` alone.

Every test signs in as a fresh SSO user of the session's sign-in service.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes import client as k8s

from deploykit import status_of
from harness.cluster import Cluster
from harness.signin import (
    DISCOVERY_PATH,
    JWKS_PATH,
    LOGIN_PATH,
    SignIns,
    SignInService,
    SsoUser,
    claims,
    header,
    mint,
)
from support import eventually


@pytest.fixture
def elsewhere(supervisor_api: k8s.ApiClient) -> Iterator[str]:
    """A supervisor namespace where nobody was bound."""
    name = f"t-{secrets.token_hex(3)}"
    core = k8s.CoreV1Api(supervisor_api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def _services(supervisor: Cluster, token: str, namespace: str) -> int:
    """The API server's answer to listing Services in ``namespace`` with ``token``."""
    api = supervisor.api_client(token=token)
    try:
        return status_of(k8s.CoreV1Api(api).list_namespaced_service, namespace)
    finally:
        api.close()


def test_a_signed_in_user_reads_where_bound_to_view_and_nowhere_else(
    supervisor: Cluster,
    signin: SignInService,
    sso_user: SsoUser,
    namespace: str,
    elsewhere: str,
) -> None:
    supervisor.bind_sso_user(sso_user.name, namespace)

    answer = signin.sign_in(sso_user.name, sso_user.password)
    assert answer.status == 200
    assert set(answer.body) == {"session_id"}
    token = answer.token
    assert token is not None
    # What vSphere's session token says: who, for which server, until when, signed by whom.
    said = claims(token)
    assert said["iss"] == signin.issuer
    assert said["sub"] == sso_user.name
    assert said["aud"] == signin.audience
    assert said["nbf"] == said["iat"] < said["exp"]
    assert said["jti"]
    assert header(token) == {"alg": "ES256", "typ": "JWT", "kid": signin.jwk()["kid"]}

    api = supervisor.api_client(token=token)
    core = k8s.CoreV1Api(api)
    try:
        review = k8s.AuthenticationV1Api(api).create_self_subject_review(k8s.V1SelfSubjectReview())
        assert review.status.user_info.username == sso_user.username == f"sso:{sso_user.name}"
        assert status_of(core.list_namespaced_service, namespace) == 200
        # view reads, and reads no Secrets; nothing at all where the user is not bound.
        assert status_of(core.list_namespaced_secret, namespace) == 403
        assert (
            status_of(
                core.create_namespaced_service,
                namespace,
                {"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}},
            )
            == 403
        )
        assert status_of(core.list_namespaced_service, elsewhere) == 403
    finally:
        api.close()

    assert signin.sign_ins(sso_user.name) == SignIns(succeeded=1, refused=0)
    # The password went to /wcp/login alone, and no token went there; the API server's own
    # fetches of the discovery document and the key set carried no credential of any kind.
    seen = signin.requests()
    mine = [r for r in seen if r.user == sso_user.name]
    assert [(r.method, r.path, r.basic, r.bearer) for r in mine] == [
        ("POST", LOGIN_PATH, True, False)
    ]
    fetched = [r for r in seen if r.path != LOGIN_PATH]
    assert {(r.method, r.path, r.status) for r in fetched} >= {
        ("GET", DISCOVERY_PATH, 200),
        ("GET", JWKS_PATH, 200),
    }
    assert not [r for r in fetched if r.basic or r.bearer]


def test_a_wrong_password_or_an_unknown_user_gets_a_401_and_no_token(
    signin: SignInService, sso_user: SsoUser
) -> None:
    wrong = secrets.token_urlsafe(12)
    refused = signin.sign_in(sso_user.name, wrong)
    assert refused.status == 401
    assert refused.token is None
    assert set(refused.body) == {"message"}
    text = json.dumps(refused.body)
    assert wrong not in text
    assert sso_user.password not in text

    unknown = signin.sign_in(f"nobody-{secrets.token_hex(3)}@vsphere.local", sso_user.password)
    assert unknown.status == 401
    assert unknown.token is None
    # An unknown user is answered as a wrong password is: the answer tells nobody who exists.
    assert unknown.body == refused.body

    # One wrong password locks nothing; a changed password takes effect at once.
    assert signin.sign_in(sso_user.name, sso_user.password).status == 200
    changed = signin.set_password(sso_user.name, secrets.token_urlsafe(12))
    assert signin.sign_in(sso_user.name, sso_user.password).status == 401
    assert signin.sign_in(changed.name, changed.password).status == 200
    assert signin.sign_ins(sso_user.name) == SignIns(succeeded=2, refused=2)
    reasons = [r.reason for r in signin.requests() if r.user == sso_user.name and r.status == 401]
    assert reasons == ["wrong-password", "wrong-password"]


def test_a_locked_user_gets_a_401_until_unlocked(signin: SignInService, sso_user: SsoUser) -> None:
    signin.lock(sso_user.name)
    locked = signin.sign_in(sso_user.name, sso_user.password)
    assert locked.status == 401
    assert locked.token is None
    assert locked.body == {"message": "the account is locked"}

    signin.unlock(sso_user.name)
    assert signin.sign_in(sso_user.name, sso_user.password).token is not None
    assert signin.sign_ins(sso_user.name) == SignIns(succeeded=1, refused=1)


def test_an_expired_token_is_answered_401_and_the_audit_log_shows_it(
    supervisor: Cluster, signin: SignInService, sso_user: SsoUser, namespace: str
) -> None:
    audit = supervisor.audit
    assert audit is not None
    supervisor.bind_sso_user(sso_user.name, namespace)
    signin.set_token_lifetime(3, user=sso_user.name)
    token = signin.session_token(sso_user)
    expires = claims(token)["exp"]
    assert expires - claims(token)["iat"] == 3

    # Unused until then, so that no cached success of the API server outlives it.
    eventually(lambda: time.time() > expires + 1, timeout=10, interval=0.2)
    assert _services(supervisor, token, namespace) == 401

    # The server cannot say who sent it, only that its credentials were refused.
    path = f"/api/v1/namespaces/{namespace}/services"
    refused = eventually(lambda: [r for r in audit.answered(401) if r.uri.startswith(path)])
    assert [(r.user, r.verb, r.code) for r in refused] == [("", "list", 401)]

    # The expiry refused it, not the user: a new token reads again, and is audited by name.
    signin.set_token_lifetime(600, user=sso_user.name)
    assert _services(supervisor, signin.session_token(sso_user), namespace) == 200
    mine = eventually(lambda: [r for r in audit.requests() if r.user == sso_user.username])
    assert [(r.verb, r.code) for r in mine] == [("list", 200)]


def test_a_token_of_another_key_or_audience_is_answered_401(
    supervisor: Cluster, signin: SignInService, sso_user: SsoUser, namespace: str
) -> None:
    supervisor.bind_sso_user(sso_user.name, namespace)
    good = signin.session_token(sso_user)
    assert _services(supervisor, good, namespace) == 200

    forged = mint(
        ec.generate_private_key(ec.SECP256R1()),
        issuer=signin.issuer,
        audience=signin.audience,
        subject=sso_user.name,
        lifetime=600,
    )
    assert _services(supervisor, forged, namespace) == 401
    # The service's own key is not enough either: a token meant for another server is refused.
    foreign = signin.mint_token(sso_user.name, audience="some-other-server")
    assert claims(foreign)["iss"] == signin.issuer
    assert _services(supervisor, foreign, namespace) == 401


def test_a_stopped_service_refuses_connections_and_starts_again_with_its_key(
    supervisor: Cluster, signin: SignInService, sso_user: SsoUser, namespace: str
) -> None:
    supervisor.bind_sso_user(sso_user.name, namespace)
    before = signin.session_token(sso_user)
    port = signin.port

    signin.stop()
    try:
        assert not signin.running
        with pytest.raises(ConnectionRefusedError):
            signin.sign_in(sso_user.name, sso_user.password)
        # The API server verifies with the key set it fetched earlier: a session outlives an
        # outage of the sign-in service.
        assert _services(supervisor, before, namespace) == 200
    finally:
        signin.start()

    assert signin.port == port
    after = signin.session_token(sso_user)
    assert header(after)["kid"] == header(before)["kid"]
    assert _services(supervisor, after, namespace) == 200
    assert _services(supervisor, before, namespace) == 200
    # The refused connection reached nothing: no sign-in was counted for it.
    assert signin.sign_ins(sso_user.name) == SignIns(succeeded=2, refused=0)
