"""The claim a control plane signs for each call to a cluster gateway, and its check.

A gateway is registered with a secret it shares with its control plane (nothing else knows
it). Every call carries a short-lived JWT signed with that secret (HS256): its audience is
the cluster's name, so a claim for one cluster is worthless at another even where two share
a secret by mistake; it expires within `MAX_TTL_S`, so a claim seen in transit (a log, a
proxy) is soon useless; its subject is the Glia user the control plane acts for, where there
is one (an exec, a port-forward), so the gateway can say whose command it runs without ever
trusting a bare user header. A gateway refuses anything without a valid claim, and says no
more than that.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import jwt

from glia.errors import Unauthenticated

ALGORITHM = "HS256"
# How long a claim the control plane signs lives: one call, with room for a slow one.
TTL_S = 30.0
# The longest life a gateway accepts in a claim (exp - iat): a claim minted for longer is a
# forgery or a misconfigured signer, refused either way.
MAX_TTL_S = 60.0
# Clock skew tolerated between the control plane's and the gateway's machines.
LEEWAY_S = 5.0

# The Glia user the control plane acts for in this task, when there is one: what a signed
# claim names as its subject. Set with `acting_as` around a call that runs for a user.
acting_user: ContextVar[str | None] = ContextVar("glia_gateway_acting_user", default=None)


@contextlib.contextmanager
def acting_as(user: str | None) -> Iterator[None]:
    """Calls to a gateway inside this block carry ``user`` as their claim's subject."""
    token = acting_user.set(user)
    try:
        yield
    finally:
        acting_user.reset(token)


@dataclass(frozen=True)
class Claim:
    cluster: str
    subject: str | None


def sign_claim(secret: str, cluster: str, *, subject: str | None = None) -> str:
    """A claim for one call to ``cluster``'s gateway, acting for ``subject`` (else for the
    user of `acting_user`, if any)."""
    now = time.time()
    payload: dict[str, object] = {"aud": cluster, "iat": int(now), "exp": int(now + TTL_S)}
    subject = subject if subject is not None else acting_user.get()
    if subject is not None:
        payload["sub"] = subject
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def claim_header(secret: str, cluster: str) -> dict[str, str]:
    """``Authorization`` with a fresh claim: what `RemoteStorage` and `RemoteDisks` are
    given as ``headers`` (``lambda: claim_header(secret, cluster)``)."""
    return {"Authorization": f"Bearer {sign_claim(secret, cluster)}"}


def verify_claim(token: str, secret: str, cluster: str) -> Claim:
    """The claim ``token`` makes, or `Unauthenticated` (the same for every failure: a caller
    without the secret learns nothing of why)."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=cluster,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iat", "aud"]},
        )
        issued, expires = float(payload["iat"]), float(payload["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise Unauthenticated("no valid claim of this cluster's control plane") from None
    if expires - issued > MAX_TTL_S or issued > time.time() + LEEWAY_S:
        raise Unauthenticated("no valid claim of this cluster's control plane")
    subject = payload.get("sub")
    return Claim(cluster=cluster, subject=subject if isinstance(subject, str) else None)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
