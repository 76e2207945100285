"""Malformed records and bodies at every ingest path: never a 5xx, never half a record.

"Nothing partial" is checked by counting: the rows in the database always equal the
records the answers said were accepted, and every stored row reads back whole.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.support import freeswitch as fs
from tests.support.data import canonical, make_app, read_cdrs
from voicecdr.api import create_app
from voicecdr.config import Settings
from voicecdr.ingest.importer import import_paths
from voicecdr.models import VoiceGroup
from voicecdr.storage import Database

TOKEN = "fuzz-token-0123456789"
CRED = "fs:fuzz"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["", "0", "91", "app1", "group_call", "2019-09-09T09:00:00+08:00", "\x00"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mangled_records(draw: st.DrawFn) -> Any:
    """A canonical record with a few fields replaced, dropped or added — or junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    record = canonical(f"f{draw(st.integers(0, 40))}", second=draw(st.integers(0, 30)))
    for name in draw(st.lists(st.sampled_from([*sorted(record), "extra"]), max_size=3)):
        if draw(st.booleans()):
            record.pop(name, None)
        else:
            record[name] = draw(json_values)
    return record


@st.composite
def mangled_cdrs(draw: st.DrawFn) -> tuple[bytes, str]:
    """A mod_json_cdr body with variables replaced or dropped, in any encoding — or junk."""
    encoding = draw(st.sampled_from(fs.ENCODINGS))
    if draw(st.integers(0, 5)) == 0:
        junk = draw(st.binary(max_size=60))
        return draw(st.sampled_from([junk, b"cdr=" + junk])), fs.body({}, encoding)[1]
    doc = fs.cdr(f"u{draw(st.integers(0, 40))}", billsec=draw(st.integers(0, 30)))
    variables = doc["variables"]
    for name in draw(st.lists(st.sampled_from(sorted(variables)), max_size=3)):
        if draw(st.booleans()):
            variables.pop(name, None)
        else:
            variables[name] = draw(json_values)
    if draw(st.booleans()):
        doc["variables"] = {
            k: quote(v, safe="") if isinstance(v, str) else v for k, v in variables.items()
        }
    # Last, so the variable changes above had an object to work on.
    for name in draw(st.lists(st.sampled_from(["callflow", "variables"]), max_size=1)):
        if draw(st.booleans()):
            doc.pop(name)
        else:
            doc[name] = draw(json_values)
    return fs.body(doc, encoding)


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Database]:
    db = Database(sqlite_url)
    make_app(db, "app1")
    yield db
    db.close()


@pytest.fixture
def client(sqlite_store: Database, sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    configured = Settings(
        database_url=sqlite_url,
        rate_limit_state=str(tmp_path / "rl.sqlite"),
        ingest_token=TOKEN,
        freeswitch_credentials=CRED,
        max_batch_records=20,
    )
    with TestClient(create_app(configured, sqlite_store), raise_server_exceptions=False) as c:
        yield c


def stored(db: Database) -> int:
    total = 0
    for group in VoiceGroup:
        page = read_cdrs(db, 1, group, 0, 2**40, messageid=None, offset=0, limit=10_000)
        assert all(r.phone and r.time for r in page.rows)  # whole rows only
        total += page.total
    return total


@FUZZ
@given(
    records=st.lists(mangled_records(), max_size=25),
    framing=st.sampled_from(["array", "ndjson", "raw"]),
    junk=st.binary(max_size=40),
)
def test_batch_endpoint(
    client: TestClient, sqlite_store: Database, records: list[Any], framing: str, junk: bytes
) -> None:
    before = stored(sqlite_store)
    if framing == "array":
        body = orjson.dumps(records)
    elif framing == "ndjson":
        body = b"\n".join(orjson.dumps(r) for r in records)
    else:
        body = junk
    answer = client.post("/v1/cdrs", content=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code < 500, answer.text
    accepted = answer.json().get("accepted", 0) if answer.status_code == 200 else 0
    assert stored(sqlite_store) == before + accepted


@FUZZ
@given(cdr=mangled_cdrs())
def test_freeswitch_endpoint(
    client: TestClient, sqlite_store: Database, cdr: tuple[bytes, str]
) -> None:
    before = stored(sqlite_store)
    body, content_type = cdr
    basic = "Basic " + base64.b64encode(CRED.encode()).decode()
    answer = client.post(
        "/v1/ingest/freeswitch",
        content=body,
        headers={"Authorization": basic, "Content-Type": content_type},
    )
    assert answer.status_code < 500, answer.text
    accepted = answer.json()["accepted"] if answer.status_code == 200 else 0
    assert stored(sqlite_store) == before + accepted
    if answer.status_code >= 400:
        assert answer.json()["detail"]


@FUZZ
@given(
    records=st.lists(mangled_records(), max_size=15),
    cells=st.lists(st.lists(st.text(max_size=6), max_size=4), max_size=4),
    cdrs=st.lists(mangled_cdrs(), max_size=4),
)
def test_file_imports(
    sqlite_store: Database,
    tmp_path_factory: pytest.TempPathFactory,
    records: list[Any],
    cells: list[list[str]],
    cdrs: list[tuple[bytes, str]],
) -> None:
    before = stored(sqlite_store)
    work = tmp_path_factory.mktemp("fuzz")
    jsonl = work / "a.jsonl"
    jsonl.write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    csv = work / "b.csv"
    header = "call_id,appkey,service,phone,country_code,time,second,connected\n"
    csv.write_text(header + "\n".join(",".join(row) for row in cells))
    backlog = work / "json_cdr"
    backlog.mkdir()
    for i, (body, _) in enumerate(cdrs):
        (backlog / f"{i}.cdr.json").write_bytes(body.removeprefix(b"cdr="))
    result = import_paths(sqlite_store, [jsonl, csv, backlog], rejects_path=work / "rejects.jsonl")
    assert stored(sqlite_store) == before + result.summary.accepted
    lines = (work / "rejects.jsonl").read_bytes().splitlines() if result.rejects_file else []
    assert len(lines) == result.summary.rejected_total
