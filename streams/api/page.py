"""The live page at ``/``: one static HTML file with inline JavaScript, no build step.

The page holds no data of its own, so it is served without a token; everything it shows
comes from ``/v1`` with the token the user gives it (``/#token=…`` or the form).
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

__all__ = ["page_handler"]

_PAGE = files("streams.api").joinpath("page.html").read_bytes()


async def page_handler(request: web.Request) -> web.Response:
    return web.Response(
        body=_PAGE,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; img-src 'self' data:",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
