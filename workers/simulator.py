"""The tax authority's verification service (查验), simulated for the dev stack and the tests.

``POST /verify`` with ``{"number", "code", "issue_date", "amount", "check_code"}``. The answer is chosen by
the number's last three digits, as SPEC.md's sandbox table says:

- ``999``: 404 not found, always
- ``998``: found, with a total 1.00 yuan off the uploaded amount
- ``997``: found, already reversed by a red-letter invoice
- ``996``: 404 on the first two tries for that invoice, then found
- ``995``: 500 on every try
- anything else: found, exactly as uploaded
"""

from __future__ import annotations

import asyncio
import decimal
import random
from collections import Counter

from aiohttp import web

TRIES: web.AppKey[Counter[str]] = web.AppKey("tries", Counter)


def create_app(latency_ms: float, jitter_ms: float) -> web.Application:
    app = web.Application()
    app[TRIES] = Counter()

    async def verify(request: web.Request) -> web.Response:
        await asyncio.sleep(max(0.0, latency_ms + random.uniform(-jitter_ms, jitter_ms)) / 1000)
        try:
            asked = await request.json()
            number, amount = str(asked["number"]), decimal.Decimal(str(asked["amount"]))
        except (ValueError, KeyError, TypeError, decimal.InvalidOperation):
            return web.json_response({"error": "bad request"}, status=400)
        ending = number[-3:]
        key = str(asked.get("code") or "") + number
        app[TRIES][key] += 1
        if ending == "999" or (ending == "996" and app[TRIES][key] <= 2):
            return web.json_response({"found": False}, status=404)
        if ending == "995":
            return web.json_response({"error": "internal error"}, status=500)
        if ending == "998":
            amount += 1
        found = {
            "number": number,
            "code": asked.get("code") or "",
            "issue_date": asked.get("issue_date"),
            "amount": f"{amount:.2f}",
            "status": "reversed" if ending == "997" else "normal",
        }
        return web.json_response({"found": True, "invoice": found})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    app.router.add_post("/verify", verify)
    app.router.add_get("/healthz", healthz)
    return app
