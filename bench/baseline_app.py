"""The scale benchmark's baseline: a minimal, straightforward NXCloud query endpoint.

What a competent engineer writes in an afternoon, with no product code: a plain Starlette
app under uvicorn (the options ``voicecdr serve`` uses, one worker), the apps and their
secretkeys in a dict loaded at start-up, and per request: parse the form, check the
parameters, run ``SELECT COUNT(*)`` of the window and the page ``SELECT .. ORDER BY
placed_at, id LIMIT ? OFFSET ?`` in one snapshot with the bare driver (sqlite3 / psycopg,
one connection per thread), render the NXCloud row shape with stdlib ``datetime`` /
``zoneinfo`` and encode it with stdlib ``json``. It has no rate limiter, no lock-out, no
metrics, no request log and no ``extended`` rows: the product's answers to the same
requests must still be identical (``bench/scale.py`` checks them before timing).

    python bench/baseline_app.py --database-url URL --apps APPS.json --port 8001

``APPS.json`` maps appkey to secretkey; ids, timezones and languages come from the
database's ``apps`` table.
"""

from __future__ import annotations

import argparse
import hmac
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
RESULTS = {
    "en": ("Unsuccessful connection", "Successful connection"),
    "zh": ("未接通", "成功接通"),
}
COLUMNS = (
    "id, service, messageid, phone, country_code, show_phone, placed_at, answered_at, "
    "ended_at, billsec, connected, ivr_result, cycle, size, unit_price_nanos, basic_price_nanos"
)


@dataclass(frozen=True, slots=True)
class App:
    id: int
    secretkey: str
    tz: ZoneInfo
    language: str


class BadRequest(Exception):
    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


class Database:
    """One connection per thread; count and page read in one snapshot."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite:///")
        self._local = threading.local()
        mark = "?" if self.sqlite else "%s"
        where = (
            f"app_id = {mark} AND voice_group = {mark} AND placed_at >= {mark} "
            f"AND placed_at <= {mark}"
        )
        self.count_sql = f"SELECT count(*) FROM cdrs WHERE {where}"
        self.page_sql = (
            f"SELECT {COLUMNS} FROM cdrs WHERE {where} "
            f"ORDER BY placed_at, id LIMIT {mark} OFFSET {mark}"
        )
        self.messageid_sql = f" AND messageid = {mark}"
        self.begin = "BEGIN" if self.sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ"

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.sqlite:
                conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            else:
                conn = psycopg.connect(self.url, autocommit=True)
            self._local.conn = conn
        return conn

    def apps(self, secrets: dict[str, str]) -> dict[str, App]:
        rows = self.connection().execute("SELECT id, appkey, timezone, language FROM apps")
        return {
            appkey: App(app_id, secrets[appkey], ZoneInfo(tz), language)
            for app_id, appkey, tz, language in rows.fetchall()
            if appkey in secrets
        }

    def page(
        self, where: tuple[Any, ...], messageid: str | None, limit: int, offset: int
    ) -> tuple[int, list[Any]]:
        count_sql, page_sql = self.count_sql, self.page_sql
        if messageid is not None:
            count_sql += self.messageid_sql
            page_sql = page_sql.replace(" ORDER BY", self.messageid_sql + " ORDER BY")
            where = (*where, messageid)
        conn = self.connection()
        conn.execute(self.begin)
        try:
            total = conn.execute(count_sql, where).fetchone()[0]
            rows = (
                conn.execute(page_sql, (*where, limit, offset)).fetchall() if offset < total else []
            )
        finally:
            conn.execute("COMMIT")
        return total, rows


def _time(epoch: int | None, tz: ZoneInfo) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, tz).strftime(TIME_FORMAT)


def _price(nanos: int) -> int | float:
    return nanos // 1_000_000_000 if nanos % 1_000_000_000 == 0 else nanos / 1e9


def render(row: Any, group: int, app: App) -> dict[str, Any]:
    (id_, service, messageid, phone, cc, show, placed, answered, ended, second, connected,
     ivr, cycle, size, unit_nanos, basic_nanos) = row  # fmt: skip
    out: dict[str, Any] = {
        "id": id_,
        "result": RESULTS[app.language][bool(connected)],
        "cycle": cycle,
        "time": _time(placed, app.tz),
        "start_time": _time(answered, app.tz),
        "end_time": _time(ended, app.tz),
        "phone": phone,
    }
    if group == 0:
        out["basic_price"] = _price(basic_nanos)
        out["second"] = second
    else:
        out["second"] = second
        out["voice_type"] = service
    out.update(countryCode=cc, messageid=messageid, customer_price=_price(unit_nanos))
    out.update(show_phone=show, size=size)
    if group == 0:
        out["ivr_result"] = ivr
    return out


def _int(params: dict[str, str], name: str, low: int, high: int | None) -> int:
    text = params.get(name, "")
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        raise BadRequest("invalid_parameter", f"{name} is invalid")
    return int(text)


def _window(params: dict[str, str], tz: ZoneInfo) -> tuple[int, int]:
    try:
        start = datetime.strptime(params.get("start_time", ""), TIME_FORMAT).replace(tzinfo=tz)
        end = datetime.strptime(params.get("end_time", ""), TIME_FORMAT).replace(tzinfo=tz)
    except ValueError:
        raise BadRequest("invalid_parameter", "start_time or end_time is invalid") from None
    if start > end or end - start > timedelta(hours=24):
        raise BadRequest("range_too_large", "the time range is at most 24 hours")
    if start < datetime.now(tz) - timedelta(days=7):
        raise BadRequest("out_of_window", "start_time is older than 7 days")
    return int(start.timestamp()), int(end.timestamp())


class Service:
    def __init__(self, database: Database, apps: dict[str, App]) -> None:
        self.database = database
        self.apps = apps

    def answer(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            app = self.apps.get(params.get("appkey", ""))
            given = params.get("secretkey", "").encode()
            if app is None or not hmac.compare_digest(given, app.secretkey.encode()):
                raise BadRequest("auth_failed", "appkey or secretkey is incorrect")
            if params.get("voiceType") not in ("0", "1"):
                raise BadRequest("invalid_parameter", "voiceType must be 0 or 1")
            group = int(params["voiceType"])
            start, end = _window(params, app.tz)
            page = _int(params, "page", 1, None)
            size = _int(params, "page_size", 1, 1000)
            total, rows = self.database.page(
                (app.id, group, start, end),
                params.get("messageid") or None,
                size,
                (page - 1) * size,
            )
        except BadRequest as exc:
            return {"code": "0", "info": str(exc), "error": exc.slug}
        info = {
            "total": total,
            "page": page,
            "pageSize": size,
            "rows": [render(row, group, app) for row in rows],
        }
        return {"code": "1", "info": info}

    async def query(self, request: Request) -> Response:
        params = dict(request.query_params)
        params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
        answer = await run_in_threadpool(self.answer, params)
        body = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(body, media_type="application/json")


async def ready(_: Request) -> Response:
    return Response("ok")


def create_app(database_url: str, apps_file: Path) -> Starlette:
    database = Database(database_url)
    service = Service(database, database.apps(json.loads(apps_file.read_text())))
    return Starlette(
        routes=[
            Route("/api/voiceSms/getVoiceCdr", service.query, methods=["POST"]),
            Route("/readyz", ready),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--apps", type=Path, required=True, help="JSON: appkey -> secretkey")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The options `voicecdr serve` runs uvicorn with (src/voicecdr/cli.py), one worker.
    uvicorn.run(
        create_app(args.database_url, args.apps),
        host=args.host,
        port=args.port,
        workers=1,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=5,
        limit_concurrency=1000,
        h11_max_incomplete_event_size=16 * 1024,
    )


if __name__ == "__main__":
    main()
