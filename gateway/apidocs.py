"""``/openapi.json`` and ``/docs``: the API's document and a page to read it (Redoc), both unsigned like the
other operations endpoints. Redoc's script comes from the openapi-ui-bundles package and is served by the
gateway itself; the one thing it would fetch from a CDN, the logo in its menu, is pointed at the package's own
copy, so that the page loads nothing from outside.
"""

from __future__ import annotations

import functools
from pathlib import Path

from openapi_ui_bundles import redoc
from starlette.requests import Request
from starlette.responses import Response

from gateway import openapi

CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
STATIC = "/docs/static"
PAGE = f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Prize-invoice gateway API</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>body {{ margin: 0; padding: 0; }}</style>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="{STATIC}/redoc.standalone.js"></script>
  </body>
</html>
""".encode()
CACHED = {"Cache-Control": "public, max-age=3600"}


@functools.cache
def _document() -> bytes:
    return openapi.text()


@functools.cache
def _asset(name: str) -> bytes:
    data = (Path(redoc.static_path) / name).read_bytes()
    return data.replace(CDN_LOGO, f"{STATIC}/logo-mini.svg".encode()) if name.endswith(".js") else data


async def openapi_json(request: Request) -> Response:
    return Response(_document(), media_type="application/json")


async def docs_page(request: Request) -> Response:
    return Response(PAGE, media_type="text/html; charset=utf-8")


async def redoc_script(request: Request) -> Response:
    return Response(_asset("redoc.standalone.js"), media_type="text/javascript; charset=utf-8", headers=CACHED)


async def redoc_logo(request: Request) -> Response:
    return Response(_asset("logo-mini.svg"), media_type="image/svg+xml", headers=CACHED)
