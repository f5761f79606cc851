"""Single sign-on with an OpenID Connect identity provider (``authlib``, ``joserfc``).

Two ways in, both configured by ``OIDC_*`` settings (README, "Identity"):

- **People**: the authorization-code flow with PKCE. :func:`start_login` makes the
  provider's authorization URL with a fresh ``state``, ``nonce`` and code verifier (kept by
  the caller in a signed cookie); :func:`finish_login` exchanges the code, verifies the ID
  token and returns the local account, which the caller gives the usual bearer token.
- **Machines** (a SOAR with the client-credentials grant): a bearer JWT the provider
  issued is accepted as it is (:func:`principal_for_jwt`): its signature against the
  provider's JWKS, ``iss``, ``aud`` (``OIDC_AUDIENCE``), ``exp`` and ``nbf`` with
  ``OIDC_CLOCK_SKEW_SECONDS`` of leeway.

Either way the role comes from a claim (``OIDC_ROLE_CLAIM``, e.g. ``groups``) through
``OIDC_ROLE_MAP``; an account is created on first sign-in when ``OIDC_JIT_USERS`` is on,
keyed by the provider's ``iss`` and ``sub``, with no usable local password. Every request
to the provider goes through :mod:`security.outbound` (SSRF guard, deadlines). The
provider's metadata and keys are cached per process for :data:`METADATA_SECONDS`; a token
signed by a key not in the cached set refetches the keys once.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.requests_client import OAuth2Session
from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from models import User, db
from security.errors import Forbidden, Unauthenticated, Unavailable
from security.events import Actor, EventType, emit
from security.modules.principals import Principal, permissions_for_role
from security.modules.sessions import revoke_sessions
from security.modules.user_admin import is_demotion
from security.modules.users import hash_password
from security.outbound.http import Deadlines, checked_session
from security.outbound.ssrf import configured_policy

METADATA_SECONDS = 300
REQUEST_SECONDS = 10
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")
KEY_REFETCH_SECONDS = 30
_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, Any]] = {}
_last_key_refetch = float("-inf")


class SsoRefused(Unauthenticated):
    """A token or sign-in the provider's rules refuse (bad signature, issuer, audience,
    expired, not yet valid, wrong state)."""


class SsoUnavailable(Unavailable):
    """The provider could not be reached or answered nonsense."""


def enabled() -> bool:
    return bool(current_app.config["OIDC_ISSUER"])


def _settings(name: str) -> Any:
    return current_app.config[f"OIDC_{name}"]


def _session(session: Any = None) -> Any:
    deadlines = Deadlines(
        REQUEST_SECONDS * 2,
        REQUEST_SECONDS,
        "the identity provider took too long",
        "the identity provider took too long to answer",
    )
    return checked_session(configured_policy(), deadlines, session=session)


def _fetch_json(url: str) -> Any:
    try:
        answer = _session().get(url, timeout=REQUEST_SECONDS)
        answer.raise_for_status()
        return answer.json()
    except Exception as error:  # any transport or JSON failure is the provider's outage
        raise SsoUnavailable(f"The identity provider did not answer: {error}") from error


def _cached(key: str, load: Any, *, refresh: bool = False) -> Any:
    now = time.monotonic()
    with _cache_lock:
        found = _cache.get(key)
        if found and not refresh and now - found[0] < METADATA_SECONDS:
            return found[1]
    value = load()
    with _cache_lock:
        _cache[key] = (now, value)
    return value


def metadata() -> dict[str, Any]:
    """The provider's discovery document (``/.well-known/openid-configuration``)."""
    issuer = _settings("ISSUER")
    document = _cached(
        f"metadata:{issuer}", lambda: _fetch_json(f"{issuer}/.well-known/openid-configuration")
    )
    if document.get("issuer", "").rstrip("/") != issuer:
        raise SsoUnavailable("The provider's discovery document names another issuer.")
    return document


def _key_set(*, refresh: bool = False) -> KeySet:
    uri = metadata()["jwks_uri"]
    return _cached(f"jwks:{uri}", lambda: KeySet.import_key_set(_fetch_json(uri)), refresh=refresh)


def verify_jwt(raw: str, audience: str, *, nonce: str | None = None) -> dict[str, Any]:
    """The claims of a JWT the provider signed, after every check the module lists."""
    try:
        token = _decode(raw, _key_set())
    except SsoRefused:
        if not _may_refetch_keys():
            raise
        token = _decode(raw, _key_set(refresh=True))  # the provider may have rotated keys
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=_settings("CLOCK_SKEW_SECONDS"),
        iss={"essential": True, "value": _settings("ISSUER")},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as error:
        raise SsoRefused(f"The identity provider's token is not valid here: {error}") from error
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SsoRefused("The ID token's nonce does not match this sign-in.")
    return claims


def _may_refetch_keys() -> bool:
    """Whether a token that did not verify may refetch the keys: once per
    :data:`KEY_REFETCH_SECONDS`, so forged tokens cannot make us hammer the provider."""
    global _last_key_refetch
    now = time.monotonic()
    with _cache_lock:
        if now - _last_key_refetch < KEY_REFETCH_SECONDS:
            return False
        _last_key_refetch = now
    return True


def _decode(raw: str, keys: KeySet) -> Any:
    try:
        return jwt.decode(raw, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError) as error:
        raise SsoRefused("The token's signature does not verify.") from error


def role_for(claims: dict[str, Any]) -> str | None:
    """The role the mapped claim gives (the first ``OIDC_ROLE_MAP`` entry that matches),
    else ``OIDC_DEFAULT_ROLE`` (None: no access)."""
    value = claims.get(_settings("ROLE_CLAIM"))
    values = {value} if isinstance(value, str) else set(value or ())
    for group, role in _settings("ROLE_MAP").items():
        if group in values:
            return role
    return _settings("DEFAULT_ROLE")


def account_for(claims: dict[str, Any]) -> User:
    """The local account of the provider's subject: found by ``iss`` and ``sub``, its role
    kept in step with the claim, or created when ``OIDC_JIT_USERS`` allows."""
    role = role_for(claims)
    if role is None:
        raise Forbidden("Your identity provider groups grant no role here.")
    issuer, subject = _settings("ISSUER"), str(claims["sub"])
    user = db.session.scalars(
        select(User).where(User.sso_issuer == issuer, User.sso_subject == subject)
    ).first()
    if user is None:
        if not _settings("JIT_USERS"):
            raise Forbidden("No account here is linked to this identity; ask an admin.")
        return _create_account(claims, issuer, subject, role)
    if not user.is_active:
        raise Forbidden("This account is deactivated.")
    if user.role != role:
        old = user.role
        user.role = role
        user.version += 1
        actor = Actor(user.id, user.username)
        emit(
            EventType.USER_EDITED,
            user.id,
            {"username": user.username, "changes": {"role": [old, role]}, "source": "sso"},
            actor=actor,
        )
        if is_demotion(old, role):
            revoke_sessions(user, actor=actor, reason="demoted")
    return user


def _create_account(claims: dict[str, Any], issuer: str, subject: str, role: str) -> User:
    username = _free_username(
        str(claims.get("preferred_username") or claims.get("email") or subject)
    )
    user = User(
        username=username,
        # No one knows this password, and verify_password refuses SSO accounts anyway.
        password_hash=hash_password(secrets.token_urlsafe(32)),
        role=role,
        email=claims.get("email"),
        display_name=claims.get("name"),
        sso_issuer=issuer,
        sso_subject=subject,
    )
    db.session.add(user)
    db.session.flush()
    emit(
        EventType.USER_CREATED,
        user.id,
        {"username": user.username, "role": role, "source": "sso"},
        actor=Actor(user.id, user.username),
    )
    return user


def _free_username(wanted: str) -> str:
    """A username from the provider's claim, made unique (``-2``, ``-3`` ...) and valid."""
    base = "".join(c if c.isalnum() or c in "_.@-" else "-" for c in wanted)[:56] or "sso-user"
    if not base[0].isalnum():
        base = f"u{base}"
    candidate, number = base, 1
    while db.session.scalar(select(User.id).where(User.username.ilike(candidate))) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and what the callback must find again."""

    authorization_url: str
    state: str
    nonce: str
    code_verifier: str


def _client(**kwargs: Any) -> OAuth2Session:
    client = OAuth2Session(
        client_id=_settings("CLIENT_ID"),
        client_secret=_settings("CLIENT_SECRET"),
        scope=_settings("SCOPES"),
        redirect_uri=_settings("REDIRECT_URI"),
        code_challenge_method="S256",
        **kwargs,
    )
    return _session(client)


def start_login() -> LoginStart:
    """The provider's authorization URL for a new sign-in (code flow with PKCE S256)."""
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    url, _ = _client().create_authorization_url(
        metadata()["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
    )
    return LoginStart(url, state, nonce, verifier)


def finish_login(code: str, state: str, expected: dict[str, str]) -> User:
    """The account that signed in: ``state`` must be the one :func:`start_login` made
    (``expected`` is what the caller kept), the code is exchanged with its verifier, and
    the ID token verified (audience: our client id; the nonce we sent)."""
    if not secrets.compare_digest(state, expected.get("state", "")):
        raise SsoRefused("The sign-in's state does not match: start again.")
    try:
        token = _client().fetch_token(
            metadata()["token_endpoint"],
            code=code,
            code_verifier=expected["code_verifier"],
        )
    except SsoUnavailable:
        raise
    except Exception as error:
        raise SsoRefused(f"The identity provider refused the code: {error}") from error
    id_token = token.get("id_token")
    if not id_token:
        raise SsoRefused("The identity provider sent no ID token.")
    claims = verify_jwt(id_token, _settings("CLIENT_ID"), nonce=expected["nonce"])
    return account_for(claims)


def principal_for_jwt(raw: str) -> Principal | None:
    """Bearer resolver for provider-issued JWTs (machine clients); None when invalid.

    The client is a local account like any other (found or created by its ``iss`` and
    ``sub``), so what it writes has an author and deactivating it takes effect at once;
    its role follows the mapped claim of each token."""
    if not enabled() or not _settings("AUDIENCE"):
        return None
    try:
        claims = verify_jwt(raw, _settings("AUDIENCE"))
        user = account_for(claims)
    except (SsoRefused, SsoUnavailable, Forbidden):
        return None
    db.session.commit()  # a first sign-in's account and a changed role are kept
    return Principal.of(user, permissions_for_role(user.role), "jwt", user.id)
