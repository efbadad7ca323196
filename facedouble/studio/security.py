"""The studio's guard, as one ASGI middleware in front of every route.

A server on 127.0.0.1 is reachable from every page the user's browser opens, so each request must:
name a loopback Host (defeats DNS rebinding), carry a session cookie, and, when it changes state, come from
our own Origin with the CSRF header matching the CSRF cookie (double submit). Bodies are capped before they
are read.

The printed URL's token is a launch token, exchanged once for a session: the server mints a fresh random
session id for the cookie and refuses the same URL a second time (a URL left in shell history, a log or a
screen share opens nothing). With `--token-file` (a non-loopback bind) the token stays reusable, since that
file is the user's own secret for reaching the studio again.
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
MAX_BODY = 1 << 20  # 1 MiB: JSON and label edits
MAX_UPLOAD = 4 << 30  # 4 GiB: a clip upload (streamed to disk, never held in memory)
UPLOAD_PATHS = ("/api/upload",)  # the only routes whose body is streamed to the app instead of buffered


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

    def __init__(self, app, token: str, allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS, max_body: int = MAX_BODY,
                 max_upload: int = MAX_UPLOAD, single_use: bool = True):
        self.app = app
        self.token = token
        self.allowed_hosts = tuple(h.lower() for h in allowed_hosts)
        self.max_body = max_body
        self.max_upload = max_upload
        self.single_use = single_use
        self.launch_used = False
        self.sessions: set[str] = set()

    def _session_ok(self, cookie: str) -> bool:
        hit = False
        for session in self.sessions:  # compare against every one: no early exit to time
            hit |= hmac.compare_digest(cookie, session)
        return hit and bool(cookie)

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
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            moved = [(b"location", location.encode()), (b"cache-control", b"no-store")]
            if self._session_ok(cookies.get(SESSION_COOKIE, "")):  # already signed in: just drop the token
                return await _send_simple(send, 303, "", moved)
            if not hmac.compare_digest(given, self.token):
                return await _send_simple(send, 403, "studio: wrong token")
            if self.single_use and self.launch_used:
                return await _send_simple(send, 403, "studio: this launch URL was already used; restart "
                                          "`facedouble studio` for a new one")
            self.launch_used = True
            session = new_token()
            self.sessions.add(session)
            attrs = "Path=/; SameSite=Strict"
            set_cookies = [(b"set-cookie", f"{SESSION_COOKIE}={session}; HttpOnly; {attrs}".encode()),
                           (b"set-cookie", f"{CSRF_COOKIE}={secrets.token_urlsafe(24)}; {attrs}".encode()), *moved]
            return await _send_simple(send, 303, "", set_cookies)  # the token leaves the address bar and history
        if not self._session_ok(cookies.get(SESSION_COOKIE, "")):
            return await _send_simple(send, 401, "studio: no session; open the URL printed by `facedouble studio`")
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return await _send_simple(send, 403, "studio: cross-origin request refused")
            csrf = cookies.get(CSRF_COOKIE, "")
            if not csrf or not hmac.compare_digest(headers.get(CSRF_HEADER, ""), csrf):
                return await _send_simple(send, 403, "studio: missing or wrong CSRF token")
        length = headers.get("content-length")
        if scope["path"] in UPLOAD_PATHS and scope["method"] == "POST":
            return await self._upload(scope, receive, send, length)
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

    async def _upload(self, scope, receive, send, length: str | None):
        """Stream an upload to the app, with its declared length capped and the bytes really sent counted."""
        if length is None or not length.isdigit():
            return await _send_simple(send, 411, "studio: an upload needs a Content-Length")
        if int(length) > self.max_upload:
            return await _send_simple(send, 413, f"studio: upload larger than {self.max_upload} bytes")
        limit, seen = int(length), 0

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # more than declared: the app sees a disconnect and removes its partial file
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, counted_receive, send)
