"""The console's Receipts page on SQLite and PostgreSQL: counts and dead receipts of the
signed-in app only, and replays (behind a confirmation, CSRF-checked) that a real
receiver on 127.0.0.1 then gets."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.integration.test_receipt_delivery import deliver, priced_app
from tests.support.console import csrf_of
from tests.support.console_pages import signed_in, tuned
from tests.support.receiver import Answer, Receiver, receiving
from voicecdr.config import Settings
from voicecdr.models import ReceiptStatus
from voicecdr.storage import AppStore, Database, Outbox, schema

SECRET = "secret-one-1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(lambda n, got: Answer(503, b"down")) as r:
        yield r


@pytest.fixture
def dead(db: Database, receiver: Receiver) -> Receiver:
    """app1 with 3 dead receipts, app2 with 2 (its receiver always failing), app1 with one
    receipt still pending."""
    priced_app(db, "app1", receiver.url + "/one", calls=3)
    priced_app(db, "app2", receiver.url + "/two", calls=2)
    settle(db, 5)
    AppStore(db).update("app1", {"secret_hash": _hash(SECRET)}, now=1)
    return receiver


def settle(db: Database, receipts: int) -> None:
    """Deliver until every receipt is dead (a loaded machine can leave an attempt's
    lease running past one drain)."""
    for _ in range(5):
        deliver(db)
        if len(Outbox(db).list(status=ReceiptStatus.DEAD)) == receipts:
            return
        time.sleep(1)
    raise AssertionError(Outbox(db).list())


def _hash(secret: str) -> str:
    from voicecdr.credentials import hash_secret

    return hash_secret(secret)


def _counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', html)}


def _dead_ids(db: Database, appkey: str) -> list[int]:
    return [x.id for x in Outbox(db).list(status=ReceiptStatus.DEAD) if x.appkey == appkey]


@pytest.fixture
def app1(settings: Settings, db: Database, dead: Receiver) -> Iterator[TestClient]:
    with signed_in(tuned(settings), db, "app1", SECRET) as client:
        yield client


def test_the_page_counts_and_lists_the_app_s_dead_receipts_only(
    app1: TestClient, db: Database
) -> None:
    page = app1.get("/console/receipts")
    assert page.status_code == 200
    assert _counts(page.text) == {"pending": 0, "retrying": 0, "dead": 3}
    shown = [int(x) for x in re.findall(r'data-receipt="(\d+)"', page.text)]
    assert shown == sorted(_dead_ids(db, "app1"), reverse=True)
    assert not set(shown) & set(_dead_ids(db, "app2"))
    assert page.text.count("HTTP 503") == 3  # the last error
    assert page.text.count('data-attempts="3"') == 3
    assert "Replay all 3 dead" in page.text


def test_pending_and_retrying_receipts_are_counted_apart(app1: TestClient, db: Database) -> None:
    first, second = _dead_ids(db, "app1")[:2]
    Outbox(db).replay(now=0, ids=[first, second])  # pending again, last error kept
    with db.writer.begin() as conn:  # one never tried: no error yet
        conn.execute(
            schema.receipts.update().where(schema.receipts.c.id == first).values(last_error=None)
        )
    assert _counts(app1.get("/console/receipts").text) == {"pending": 1, "retrying": 1, "dead": 1}


def test_replaying_one_dead_receipt_after_confirming_delivers_it(
    app1: TestClient, db: Database, dead: Receiver
) -> None:
    target = _dead_ids(db, "app1")[-1]
    confirm = app1.get(f"/console/receipts/replay?id={target}")
    assert confirm.status_code == 200
    assert f"Send dead receipt {target} again?" in confirm.text
    assert Outbox(db).list(ids=[target])[0].status is ReceiptStatus.DEAD  # a GET changes nothing
    answer = app1.post(
        "/console/receipts/replay",
        data={"csrf": csrf_of(confirm.text), "app": "app1", "id": str(target)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    shown = app1.get(answer.headers["location"])
    assert "Queued 1 receipts again" in shown.text
    # Pending again with its last error kept: counted as retrying, as `receipts list` does.
    assert _counts(shown.text) == {"pending": 0, "retrying": 1, "dead": 2}
    webhook_id = Outbox(db).list(ids=[target])[0].webhook_id
    before = len(dead.received)
    dead.behave = lambda n, got: Answer()
    deliver(db)
    got = dead.received[before:]
    assert [r.headers["webhook-id"] for r in got] == [webhook_id]
    assert got[0].path == "/one"
    assert Outbox(db).list(ids=[target])[0].status is ReceiptStatus.DELIVERED
    assert len(_dead_ids(db, "app1")) == 2
    assert len(_dead_ids(db, "app2")) == 2


def test_replaying_all_dead_receipts_of_the_app(
    app1: TestClient, db: Database, dead: Receiver
) -> None:
    confirm = app1.get("/console/receipts/replay")
    assert "Send all 3 dead receipts again?" in confirm.text
    answer = app1.post(
        "/console/receipts/replay",
        data={"csrf": csrf_of(confirm.text), "app": "app1"},
    )
    assert "Queued 3 receipts again" in answer.text
    dead.behave = lambda n, got: Answer()
    before = len(dead.received)
    deliver(db)
    assert sorted(r.path for r in dead.received[before:]) == ["/one"] * 3
    assert _dead_ids(db, "app1") == []
    assert len(_dead_ids(db, "app2")) == 2  # the other app's are untouched


def test_a_replay_without_the_csrf_token_is_refused_and_changes_nothing(
    app1: TestClient, db: Database
) -> None:
    target = _dead_ids(db, "app1")[0]
    for token in (None, "forged"):
        data = {"id": str(target), "app": "app1"}
        if token:
            data["csrf"] = token
        answer = app1.post("/console/receipts/replay", data=data)
        assert answer.status_code == 403
    assert len(_dead_ids(db, "app1")) == 3


def test_a_customer_cannot_replay_or_see_another_app_s_receipts(
    app1: TestClient, db: Database
) -> None:
    theirs = _dead_ids(db, "app2")[0]
    assert app1.get("/console/receipts?app=app2").status_code == 404
    assert app1.get(f"/console/receipts/replay?id={theirs}").status_code == 404
    assert app1.get(f"/console/receipts/replay?id={theirs}&app=app2").status_code == 404
    token = csrf_of(app1.get("/console/receipts").text)
    edited = [
        {"id": str(theirs), "app": "app1"},  # their receipt's id in my form
        {"id": str(theirs), "app": "app2"},  # and their app
        {"app": "app2"},  # replay all of theirs
    ]
    for fields in edited:
        answer = app1.post("/console/receipts/replay", data={"csrf": token, **fields})
        assert answer.status_code == 404, fields
    assert len(_dead_ids(db, "app2")) == 2
    assert len(_dead_ids(db, "app1")) == 3


def test_a_receipt_that_is_not_dead_is_not_replayed(app1: TestClient, db: Database) -> None:
    target = _dead_ids(db, "app1")[0]
    Outbox(db).replay(now=2e9, ids=[target])  # pending, due later
    assert app1.get(f"/console/receipts/replay?id={target}").status_code == 404
    token = csrf_of(app1.get("/console/receipts").text)
    for junk in (str(target), "abc", "-1", "0", "99999999"):
        answer = app1.post("/console/receipts/replay", data={"csrf": token, "id": junk})
        assert answer.status_code == 404, junk
    assert Outbox(db).list(ids=[target])[0].next_attempt_at == 2e9  # not replayed again


def test_the_operator_replays_the_chosen_app_s_receipts(
    settings: Settings, db: Database, dead: Receiver
) -> None:
    with signed_in(tuned(settings), db) as client:
        page = client.get("/console/receipts?app=app2")
        assert _counts(page.text)["dead"] == 2
        confirm = client.get("/console/receipts/replay?app=app2")
        assert 'name="app" value="app2"' in confirm.text
        answer = client.post(
            "/console/receipts/replay", data={"csrf": csrf_of(confirm.text), "app": "app2"}
        )
        assert "Queued 2 receipts again" in answer.text
        assert "App app2" in answer.text
    assert _dead_ids(db, "app2") == []
    assert len(_dead_ids(db, "app1")) == 3


def test_dead_receipts_are_paged(settings: Settings, db: Database) -> None:
    with receiving(lambda n, got: Answer(500)) as receiver:
        priced_app(db, "many", receiver.url, calls=23)
        settle(db, 23)
    AppStore(db).update("many", {"secret_hash": _hash(SECRET)}, now=1)
    with signed_in(tuned(settings), db, "many", SECRET) as client:
        first = client.get("/console/receipts")
        second = client.get("/console/receipts?page=2")
        beyond = client.get("/console/receipts?page=9")
    ids = sorted(_dead_ids(db, "many"), reverse=True)
    assert re.findall(r'data-receipt="(\d+)"', first.text) == [str(i) for i in ids[:20]]
    assert re.findall(r'data-receipt="(\d+)"', second.text) == [str(i) for i in ids[20:]]
    assert 'rel="next"' in first.text
    assert 'rel="next"' not in second.text
    assert "No dead receipts." in beyond.text
