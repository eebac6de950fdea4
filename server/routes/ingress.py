"""Ingress auth: ``/auth/forward`` (nginx's auth_request, Traefik's ForwardAuth) and the
browser sign-in for job hosts, ``/auth/login``.

``/auth/forward`` finds the job by ``?job=ID`` or by the host the request was for
(``X-Forwarded-Host``, else ``Host``: ``LABEL.<jobs domain>``), and answers:

- 200, with ``X-Glia-User`` (the caller's name, when signed in) and ``X-Glia-Job``, when the
  job is exposed and unfinished and the caller may read it, or its URL needs no sign-in;
- 401 without (valid) credentials, with ``WWW-Authenticate: Bearer`` and ``X-Glia-Login``
  (where a browser signs in); with ``?redirect=1`` a browser gets a 302 there instead (what
  Traefik passes on; nginx's auth_request accepts 2xx, 401 and 403 only);
- 403 for a caller who may not read the job, or when there is no such job: the same answer.

Credentials are an API token (``Authorization: Bearer``) or the ``glia_session`` cookie that
``/auth/login`` sets for the one host it was served on (``/.glia/login`` on a job host, which
the job proxy and the nginx/Traefik setups in docs/security.md route here).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from control_plane.platform import Platform
from control_plane.services.ingress import SESSION_COOKIE, Credentials
from glia.errors import Forbidden, GliaError, TooManyRequests, Unauthenticated

# Where a browser signs in on a job's host (served by the proxy, or routed here by nginx).
LOGIN_PATH = "/.glia/login"
MAX_LOGIN_FORM_BYTES = 16 * 1024
FORWARD_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def request_host(connection: HTTPConnection) -> str:
    """The host the client asked for: the first ``X-Forwarded-Host`` (a proxy in front),
    else ``Host``."""
    forwarded = connection.headers.get("x-forwarded-host", "").split(",")[0].strip()
    return forwarded or connection.headers.get("host", "")


def request_scheme(connection: HTTPConnection) -> str:
    forwarded = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded if forwarded in ("http", "https") else connection.url.scheme


def credentials_of(connection: HTTPConnection) -> Credentials:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return Credentials(
        host=request_host(connection),
        bearer=bearer,
        session=connection.cookies.get(SESSION_COOKIE) or None,
    )


def safe_return_path(value: str | None) -> str:
    """A path on the same host to go back to after sign-in; ``/`` for anything else (a full
    URL, ``//evil.example``, ``/\\evil``): the login form is no open redirect."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in value):
        return "/"
    return value


def login_location(return_path: str) -> str:
    return f"{LOGIN_PATH}?rd={quote(safe_return_path(return_path), safe='')}"


def wants_html(connection: HTTPConnection) -> bool:
    return "text/html" in connection.headers.get("accept", "")


def page(
    title: str, message: str, *, status: int, headers: dict[str, str] | None = None
) -> Response:
    """A small HTML page for people (the proxy's and the login form's errors)."""
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif;"
        f"max-width:40em;margin:4em auto'><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )


def _login_form(return_path: str, *, error: str | None = None, status: int = 200) -> Response:
    notice = f"<p style='color:#b00'>{html.escape(error)}</p>" if error else ""
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sign in to Glia</title></head>"
        "<body style='font-family:sans-serif;max-width:24em;margin:4em auto'>"
        f"<h1>Sign in to Glia</h1>{notice}<form method='post'>"
        f"<input type='hidden' name='rd' value='{html.escape(return_path, quote=True)}'>"
        "<p><label>User name<br><input name='username' autocomplete='username' autofocus "
        "required></label></p><p><label>Password<br><input name='password' type='password' "
        "autocomplete='current-password' required></label></p>"
        "<p><button type='submit'>Sign in</button></p></form></body></html>"
    )
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'",
        },
    )


async def login(request: Request, platform: Platform) -> Response:
    """GET: the sign-in form; POST (user name, password, ``rd``): sets ``glia_session`` for
    this host (HttpOnly, SameSite=Lax, Secure over HTTPS) and sends the browser back."""
    if request.method != "POST":
        return _login_form(safe_return_path(request.query_params.get("rd")))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_FORM_BYTES:
            return page("Too large", "The sign-in form is too large.", status=413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}
    return_path = safe_return_path(form.get("rd"))
    if not form.get("username") or not form.get("password"):
        return _login_form(return_path, error="Give your user name and password.", status=400)
    ingress = platform.ingress
    try:
        user = await ingress.check_password(
            username=form.get("username", "")[:128],
            password=form.get("password", "")[:1024],
            client_address=request.client.host if request.client else None,
        )
    except TooManyRequests as error:
        return _login_form(return_path, error=error.message, status=429)
    except Unauthenticated as error:
        return _login_form(return_path, error=error.message, status=401)
    host = request_host(request)
    token = await ingress.browser_session(user, host)
    response = RedirectResponse(return_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=platform.settings.ingress_session_ttl_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request_scheme(request) == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def routes(platform: Callable[[], Platform]) -> list[Route]:
    async def forward(request: Request) -> Response:
        current = platform()
        ingress = current.ingress
        credentials = credentials_of(request)
        job_id = request.query_params.get("job")
        label = ingress.host_label(credentials.host)
        job = await ingress.exposed_job(job_id=job_id, label=label) if job_id or label else None
        try:
            user = await ingress.authorize(job, credentials)
        except Unauthenticated as error:
            original = request.headers.get("x-forwarded-uri") or request.headers.get(
                "x-original-uri", "/"
            )
            location = login_location(original)
            if request.query_params.get("redirect") == "1" and wants_html(request):
                return RedirectResponse(location, status_code=302)
            return _refusal(error, 401, {"WWW-Authenticate": "Bearer", "X-Glia-Login": location})
        except Forbidden as error:
            return _refusal(error, 403, {})
        headers = {"Cache-Control": "no-store"}
        if job is not None:
            headers["X-Glia-Job"] = job.id
        if user is not None:
            headers["X-Glia-User"] = user.name
        return Response(status_code=200, headers=headers)

    async def login_route(request: Request) -> Response:
        return await login(request, platform())

    return [
        Route("/auth/forward", forward, methods=FORWARD_METHODS),
        Route("/auth/login", login_route, methods=["GET", "POST"]),
    ]


def _refusal(error: GliaError, status: int, headers: dict[str, str]) -> Response:
    return Response(
        error.message,
        status_code=status,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store", **headers},
    )
