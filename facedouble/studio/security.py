"""The studio's guard, as one ASGI middleware in front of every route.

A server on 127.0.0.1 is reachable from every page the user's browser opens, so each request must:
name a loopback Host (defeats DNS rebinding), carry the session token (cookie set from the one-time URL),
and, when it changes state, come from our own Origin with the CSRF header matching the CSRF cookie
(double submit). Bodies are capped before they are read.
"""

from __future__ import annotations

import hmac
import re
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

SESSION_COOKIE = "fd_session"
CSRF_COOKIE = "fd_csrf"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$")
MAX_BODY = 1 << 20  # 1 MiB: JSON and label edits; clips are added by path, never uploaded whole


def new_token() -> str:
    """A fresh session token."""
    return secrets.token_urlsafe(32)


def _host_ok(host: str, allowed: tuple[str, ...]) -> bool:
    match = _HOST_RE.match(host)
    return bool(match) and match.group(1).lower() in allowed


async def _send_simple(send, status: int, text: str, headers: list | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class StudioGuard:
    """ASGI middleware enforcing Host, token, Origin, CSRF and body-size rules."""

    def __init__(self, app, token: str, allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS, max_body: int = MAX_BODY):
        self.app = app
        self.token = token
        self.allowed_hosts = tuple(h.lower() for h in allowed_hosts)
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not _host_ok(host, self.allowed_hosts):
            return await _send_simple(send, 421, "studio: unknown Host header (open the printed URL)")
        cookies = {k: m.value for k, m in SimpleCookie(headers.get("cookie", "")).items()}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        if given is not None and scope["method"] == "GET":
            if not hmac.compare_digest(given, self.token):
                return await _send_simple(send, 403, "studio: wrong token")
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            attrs = "Path=/; SameSite=Strict"
            set_cookies = [(b"set-cookie", f"{SESSION_COOKIE}={self.token}; HttpOnly; {attrs}".encode()),
                           (b"set-cookie", f"{CSRF_COOKIE}={secrets.token_urlsafe(24)}; {attrs}".encode()),
                           (b"location", location.encode()), (b"cache-control", b"no-store")]
            return await _send_simple(send, 303, "", set_cookies)  # the token leaves the address bar and history
        if not hmac.compare_digest(cookies.get(SESSION_COOKIE, ""), self.token):
            return await _send_simple(send, 401, "studio: no session; open the URL printed by `facedouble studio`")
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return await _send_simple(send, 403, "studio: cross-origin request refused")
            csrf = cookies.get(CSRF_COOKIE, "")
            if not csrf or not hmac.compare_digest(headers.get(CSRF_HEADER, ""), csrf):
                return await _send_simple(send, 403, "studio: missing or wrong CSRF token")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _send_simple(send, 413, "studio: request body too large")
        # Read the whole (capped) body before the app sees it: a streamed body without Content-Length is
        # counted too, and the app never gets a half body it might act on.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None  # client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_body:
                return await _send_simple(send, 413, "studio: request body too large")
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay_receive():
            return replay.pop() if replay else await receive()

        return await self.app(scope, replay_receive, send)
