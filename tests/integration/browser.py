"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol.

Just enough of CDP for page tests: open a URL, evaluate JavaScript, take a screenshot.
The protocol is JSON over a websocket; aiohttp (already a dependency) speaks both.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from streams.kafka.broker import free_port
from tests.integration.workers import wait_for

__all__ = ["Chromium", "chromium_path"]

_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """``async with Chromium(tmp) as browser: await browser.open(url)``."""

    def __init__(self, workdir: Path, size: tuple[int, int] = (1280, 1100)) -> None:
        self.workdir = workdir
        self.size = size
        self.port = free_port()
        self._ids = itertools.count(1)
        self._proc: subprocess.Popen | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def _launch(self) -> subprocess.Popen:
        binary = chromium_path()
        assert binary, "chromium is not installed (infra/debian-packages.txt)"
        with open(self.workdir / "chromium.log", "wb") as log:
            return subprocess.Popen(
                [
                    binary,
                    *_FLAGS,
                    f"--remote-debugging-port={self.port}",
                    f"--user-data-dir={self.workdir / 'profile'}",
                    f"--window-size={self.size[0]},{self.size[1]}",
                    "about:blank",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def __aenter__(self) -> Chromium:
        self._proc = self._launch()
        self._session = aiohttp.ClientSession()
        target = await wait_for(self._page_target, 30, "chromium's DevTools endpoint", 0.2)
        self._ws = await self._session.ws_connect(target, max_msg_size=0)
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    async def _page_target(self) -> str | None:
        assert self._session is not None
        try:
            async with self._session.get(f"http://127.0.0.1:{self.port}/json/list") as r:
                targets = await r.json()
        except (aiohttp.ClientError, ValueError):
            return None
        pages = [t for t in targets if t.get("type") == "page"]
        return pages[0]["webSocketDebuggerUrl"] if pages else None

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One CDP command; events that arrive meanwhile are dropped."""
        assert self._ws is not None
        ident = next(self._ids)
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._ws.receive_json(), 30)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def open(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("text", "script error"))
        return result["result"].get("value")

    async def attributes(self, selector: str, name: str) -> list[str]:
        """The `name` data attribute of every element `selector` matches, in page order."""
        return await self.evaluate(
            f"[...document.querySelectorAll({selector!r})].map(e => e.dataset[{name!r}])"
        )

    async def text(self) -> str:
        """Everything the page shows as text."""
        return await self.evaluate("document.body.innerText")

    async def fresh(self, url: str) -> None:
        """Open `url` as a new visit: a blank page first, so a hash-only change reloads, and
        the tab's session storage (where the page keeps its token) cleared."""
        await self.open("about:blank")
        await wait_for(lambda: self.evaluate("location.href === 'about:blank'"), 10, "blank page")
        origin = url.split("/#")[0].rstrip("/")
        await self.send("Storage.clearDataForOrigin", origin=origin, storageTypes="all")
        await self.open(url)

    async def fill(self, form: str, values: dict[str, Any]) -> None:
        """Type `values` into the named fields of the form matching CSS `form` (firing the
        input events a person's typing fires), then submit it as its button would."""
        script = (
            "((form, values) => {"
            " const f = document.querySelector(form);"
            " for (const [name, value] of Object.entries(values)) {"
            "   const field = f.elements[name]; field.value = String(value);"
            "   field.dispatchEvent(new Event('input', {bubbles: true}));"
            "   field.dispatchEvent(new Event('change', {bubbles: true})); }"
            " f.requestSubmit(); })"
            f"({json.dumps(form)}, {json.dumps(values)})"
        )
        await self.evaluate(script)

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path
