"""Request-size limit, enforced before the body is read.

A declared Content-Length over the limit is answered 413 at once; a body without one
(chunked) is counted as it streams and cut off at the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Multipart framing (boundaries, part headers, form fields) on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024


class BodyTooLarge(Exception):
    pass


def _size(limit: int) -> str:
    # A limit under 1 MB (tests use 10 KiB) would otherwise read "larger than 0 MB".
    if limit < 1024 * 1024:
        return f"{limit / 1024:.0f} KB"
    return f"{limit / (1024 * 1024):.4g} MB"


async def _too_large(send: Send, limit: int) -> None:
    # The one error shape of the API (api/errors.py), written by hand: this runs outside
    # FastAPI's exception handlers.
    body = json.dumps(
        {
            "detail": f"the request body is larger than {_size(limit)}",
            "hint": "Send a smaller file (split it, or drop unused columns), or ask the "
            "operator to raise LORAFORGE_MAX_UPLOAD_MB.",
            "errors": [],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.limit = max_bytes + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit - MULTIPART_OVERHEAD)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.limit - MULTIPART_OVERHEAD)
