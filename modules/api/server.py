"""Putting the API on an app: HTTP Basic auth (--api-auth), a request body limit, X-Process-Time and --api-log,
CORS (--cors-allow-origins[-regex]), the routes, and the warning when the API is reachable from other machines
without auth."""
import base64
import binascii
import json
import secrets
import sys
import time

from modules import settings_guard, shared

MAX_BODY_BYTES = 256 * 1024 * 1024


def parse_credentials(text: str, flag: str = "--api-auth") -> list[tuple[str, str]]:
    """ "u1:p1,u2:p2" (quotes and newlines allowed) -> [(user, password), ...]; an entry without ':' is a
    SystemExit naming `flag`."""
    credentials = []
    for entry in (text or "").strip('"').replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        if ":" not in entry:
            raise SystemExit(f"{flag} entry {entry!r} is not in the form user:password")
        user, password = entry.split(":", 1)
        credentials.append((user, password))
    return credentials


def exposure_warning(cmd_opts=None) -> str | None:
    """The start-up warning for an API that other machines can reach without --api-auth, or None."""
    cmd_opts = cmd_opts or shared.cmd_opts
    if not (cmd_opts.api or cmd_opts.nowebui) or cmd_opts.api_auth or not settings_guard.exposed(cmd_opts):
        return None
    return (f"Warning: the API is reachable from other machines ({settings_guard.server_name(cmd_opts)}"
            f"{', --share' if cmd_opts.share else ''}) and has no --api-auth: anyone who can reach this port can generate "
            f"images and change settings. Add --api-auth user:password.")


async def _send_json(send, status, body: dict, headers=()):
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})


class BodyTooLarge(Exception):
    pass


class ApiMiddleware:
    """ASGI middleware: auth on the API's paths (every path with `protect_all`), body limit, timing, log."""

    def __init__(self, app, *, credentials: dict, protect_all: bool, log: bool, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.credentials = credentials
        self.protect_all = protect_all
        self.log = log
        self.max_body = max_body

    def _authorized(self, scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not header.lower().startswith(b"basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = self.credentials.get(user)
        return expected is not None and secrets.compare_digest(password.encode(), expected.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        is_api = path.startswith("/sdapi/")
        if self.credentials and (is_api or self.protect_all) and scope.get("method") != "OPTIONS" and not self._authorized(scope):
            return await _send_json(send, 401, {"detail": "Incorrect username or password"}, [(b"www-authenticate", b"Basic")])
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return await _send_json(send, 413, {"error": "BodyTooLarge", "detail": f"the request body is larger than {self.max_body // (1024 * 1024)} MB"})
        started = time.perf_counter()
        received = 0
        response_started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise BodyTooLarge()
            return message

        async def timed_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                elapsed = time.perf_counter() - started
                message = {**message, "headers": [*message.get("headers", []), (b"x-process-time", f"{elapsed:.4f}".encode())]}
                if self.log and is_api:
                    client = scope.get("client") or ("", "")
                    print(f"API {time.strftime('%Y-%m-%d %H:%M:%S')} {message['status']} HTTP/{scope.get('http_version')} "
                          f"{scope.get('method')} {path} {client[0]} {elapsed:.4f}", file=sys.stderr, flush=True)
            await send(message)

        try:
            await self.app(scope, counted_receive, timed_send)
        except BodyTooLarge:
            if not response_started:
                await _send_json(send, 413, {"error": "BodyTooLarge", "detail": f"the request body is larger than {self.max_body // (1024 * 1024)} MB"})


def setup_middleware(app, *, protect_all: bool):
    """Add the API middleware (and CORS when asked) to an app, even one already serving (the web UI's)."""
    cmd_opts = shared.cmd_opts
    app.middleware_stack = None  # let the running app take new middleware; it is rebuilt on the next request
    app.add_middleware(ApiMiddleware, credentials=dict(parse_credentials(cmd_opts.api_auth)), protect_all=protect_all,
                       log=cmd_opts.api_log)
    if cmd_opts.cors_allow_origins or cmd_opts.cors_allow_origins_regex:
        from starlette.middleware.cors import CORSMiddleware
        options = {"allow_methods": ["*"], "allow_headers": ["*"], "allow_credentials": True}
        if cmd_opts.cors_allow_origins:
            options["allow_origins"] = cmd_opts.cors_allow_origins.split(",")
        if cmd_opts.cors_allow_origins_regex:
            options["allow_origin_regex"] = cmd_opts.cors_allow_origins_regex
        app.add_middleware(CORSMiddleware, **options)  # outermost: preflight requests need no credentials
    app.middleware_stack = app.build_middleware_stack()


def create_api(app, *, sdapi: bool, protect_all: bool = False):
    """The API on `app`: /internal/* always (the page's progress requests), /sdapi/v1/* when `sdapi`."""
    from modules.api.api import Api
    setup_middleware(app, protect_all=protect_all)
    api = Api(app, sdapi=sdapi)
    warning = exposure_warning()
    if warning:
        print(warning, file=sys.stderr, flush=True)
    return api
