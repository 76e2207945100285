"""Receipts delivered to real HTTP receivers on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from tests.support.data import canonical, make_app
from tests.support.receiver import Answer, Received, Receiver, receiving
from voicecdr.ingest.core import Ingestor, Item
from voicecdr.models import App, ReceiptStatus
from voicecdr.rating import parse_plan_csv
from voicecdr.retry import RetryPolicy
from voicecdr.storage import AppStore, CdrWriter, Database, Outbox, RatingStore
from voicecdr.workers.rater import Rater, rerate
from voicecdr.workers.sender import Sender, SenderConfig


@pytest.fixture
def database_url(any_database_url: str) -> str:
    """SQLite, PostgreSQL and Citus: these tests hold on every database."""
    return any_database_url


PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,20,0.05,0.005\n"
QUICK = SenderConfig(timeout=2, policy=RetryPolicy((0, 0), jitter=0), allow_private=True)


def priced_app(db: Database, appkey: str, url: str, calls: int = 1) -> App:
    app = make_app(db, appkey, callback_url=url).app
    RatingStore(db).import_plan(app.id, parse_plan_csv(PLAN), source="t", now=1)
    records = [canonical(f"{appkey}-{i}", appkey=appkey, second=19 + i) for i in range(calls)]
    Ingestor(AppStore(db), CdrWriter(db)).ingest(Item(i, r) for i, r in enumerate(records))
    Rater(db).drain()
    return app


def deliver(db: Database, config: SenderConfig = QUICK, **kwargs: object) -> None:
    async def go() -> None:
        sender = Sender(db, config, **kwargs)  # type: ignore[arg-type]
        try:
            await sender.drain()
        finally:
            await sender.aclose()

    asyncio.run(go())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def test_delivered_receipt_is_signed_and_complete(db: Database, receiver: Receiver) -> None:
    app = priced_app(db, "app1", f"{receiver.url}/dr?tenant=1")
    deliver(db)
    (got,) = receiver.received
    assert got.path == "/dr?tenant=1"
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    Webhook(app.signing_secret).verify(got.body, got.headers, json_parse=False)
    fields = parse_qs(got.body)
    assert fields["voice_type"] == ["0"]
    assert fields["customer_price"] == ["0.05"]
    (receipt,) = Outbox(db).list()
    assert (receipt.status, receipt.attempts, receipt.last_status) == (
        ReceiptStatus.DELIVERED,
        1,
        200,
    )
    assert receipt.webhook_id == got.headers["webhook-id"]


def test_failure_then_success_keeps_the_webhook_id(db: Database) -> None:
    def flaky(n: int, r: Received) -> Answer:
        return Answer(500, b"oops") if n == 1 else Answer(200, b"nope") if n == 2 else Answer()

    with receiving(flaky) as receiver:
        priced_app(db, "app1", receiver.url)
        deliver(
            db,
            SenderConfig(timeout=2, policy=RetryPolicy((0, 0, 0), jitter=0), allow_private=True),
        )
    assert len(receiver.received) == 3
    ids = {r.headers["webhook-id"] for r in receiver.received}
    bodies = {r.body for r in receiver.received}
    assert len(ids) == 1
    assert len(bodies) == 1
    (receipt,) = Outbox(db).list()
    assert (receipt.status, receipt.attempts) == (ReceiptStatus.DELIVERED, 3)


def test_the_body_is_fixed_when_the_receipt_is_made(db: Database) -> None:
    # The outbox keeps what a body is made of and renders it at each attempt: a re-rating
    # of the call and a change of the app's timezone and language between attempts must
    # not change a byte of it. The re-rating's own receipt reports the new charge.
    def fail_first(n: int, r: Received) -> Answer:
        return Answer(500, b"oops") if n == 1 else Answer()

    once = SenderConfig(timeout=2, policy=RetryPolicy((0,), jitter=0), allow_private=True)
    with receiving(fail_first) as receiver:
        app = priced_app(db, "app1", receiver.url)
        (original,) = Outbox(db).list()
        deliver(db, SenderConfig(timeout=2, policy=RetryPolicy((3600,)), allow_private=True))
        assert len(receiver.received) == 1
        app = AppStore(db).update("app1", {"timezone": "America/New_York", "language": "zh"}, now=2)
        RatingStore(db).import_plan(
            app.id, parse_plan_csv(PLAN.replace("0.05", "0.07")), source="t", now=3
        )
        report = rerate(db, app, 0, 2**40, dry_run=False, resend_receipts=True)
        assert (report.changed, report.receipts) == (1, 1)
        Outbox(db).replay(now=time.time(), ids=[original.id])
        deliver(db, once)
    first, again, rerated = sorted(
        receiver.received, key=lambda r: r.headers["webhook-id"] != original.webhook_id
    )
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == original.webhook_id
    assert again.body == first.body
    assert parse_qs(first.body)["customer_price"] == ["0.05"]
    assert parse_qs(first.body)["result"] == ["Successful connection"]
    assert rerated.headers["webhook-id"] != original.webhook_id
    assert parse_qs(rerated.body)["customer_price"] == ["0.07"]
    assert parse_qs(rerated.body)["result"] == ["成功接通"]


def test_a_receipt_stored_with_its_body_is_sent_as_stored(db: Database) -> None:
    # Receipts recorded before schema 0005 carry their body in ``payload``.
    with receiving() as receiver:
        priced_app(db, "app1", receiver.url)
        with db.writer.begin() as conn:
            conn.execute(sa.text("UPDATE receipts SET payload = 'phone=1&old=yes', cycle = NULL"))
        deliver(db)
    (got,) = receiver.received
    assert got.body == "phone=1&old=yes"
    assert Outbox(db).list()[0].status is ReceiptStatus.DELIVERED


def test_dead_after_the_schedule_then_replayed(db: Database) -> None:
    with receiving(lambda n, r: Answer(503, b"down")) as receiver:
        priced_app(db, "app1", receiver.url)
        deliver(db)
        assert len(receiver.received) == 3  # the first attempt and two retries
        (receipt,) = Outbox(db).list()
        assert receipt.status is ReceiptStatus.DEAD
        assert receipt.last_error == "HTTP 503"
        receiver.behave = lambda n, r: Answer()
        assert Outbox(db).replay(now=time.time(), dead_only=True) == 1
        deliver(db)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert Outbox(db).list()[0].status is ReceiptStatus.DELIVERED


def test_retry_after_is_honoured(db: Database) -> None:
    with receiving(lambda n, r: Answer(429, b"slow down", {"Retry-After": "120"})) as receiver:
        priced_app(db, "app1", receiver.url)
        before = time.time()
        deliver(db)
    assert len(receiver.received) == 1
    (receipt,) = Outbox(db).list()
    assert receipt.status is ReceiptStatus.PENDING
    assert before + 119 < receipt.next_attempt_at < time.time() + 121


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answer(200, b"ok"), "HTTP 200: body was 'ok', not 'success'"),
        (Answer(302, b"", {"Location": "http://127.0.0.1:1/elsewhere"}), "HTTP 302"),
    ],
)
def test_non_success_answers_are_failures(db: Database, answer: Answer, error: str) -> None:
    with receiving(lambda n, r: answer) as receiver:
        priced_app(db, "app1", receiver.url)
        deliver(db, SenderConfig(timeout=2, policy=RetryPolicy((60,)), allow_private=True))
    assert len(receiver.received) == 1  # redirects are not followed
    (receipt,) = Outbox(db).list()
    assert (receipt.status, receipt.last_error) == (ReceiptStatus.PENDING, error)


def test_timeout_is_a_failure(db: Database) -> None:
    with receiving(lambda n, r: Answer(delay=2)) as receiver:
        priced_app(db, "app1", receiver.url)
        deliver(db, SenderConfig(timeout=0.5, policy=RetryPolicy((60,)), allow_private=True))
    assert Outbox(db).list()[0].last_error == "no answer within 0.5s"


def test_private_addresses_are_refused_at_connect_time(db: Database, receiver: Receiver) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    priced_app(db, "app1", f"http://hooks.example.com:{port}/dr")

    def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    strict = SenderConfig(timeout=2, policy=RetryPolicy((60,)), allow_private=False)
    deliver(db, strict, resolver=to_loopback)
    assert receiver.received == []
    (receipt,) = Outbox(db).list()
    assert receipt.last_error == (
        "callback URL refused: hooks.example.com resolves to a loopback address 127.0.0.1; "
        "receipts go to public addresses only "
        "(on a closed network, set VOICECDR_ALLOW_PRIVATE_CALLBACKS=true)"
    )
    Outbox(db).replay(now=time.time(), ids=[receipt.id])
    deliver(db, QUICK, resolver=to_loopback)  # allowed: connects to the checked address
    (got,) = receiver.received
    assert got.headers["host"] == f"hooks.example.com:{port}"


def test_a_hanging_receiver_does_not_delay_other_apps(db: Database) -> None:
    with receiving(lambda n, r: Answer(delay=3)) as slow, receiving() as fast:
        priced_app(db, "slow", slow.url, calls=12)
        priced_app(db, "fast", fast.url, calls=12)
        config = SenderConfig(
            timeout=2.5, policy=RetryPolicy((60,)), allow_private=True, concurrency=8, per_app=2
        )

        async def run() -> float:
            sender = Sender(db, config)
            stopping = asyncio.Event()
            started = time.monotonic()
            task = asyncio.create_task(sender.run(stopping, grace=0))
            while len(fast.received) < 12 and time.monotonic() - started < 10:
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - started
            stopping.set()
            await task
            await sender.aclose()
            return elapsed

        elapsed = asyncio.run(run())
    assert len(fast.received) == 12
    assert elapsed < 2.0  # well before even one slow attempt could time out
    assert len(slow.received) <= 2  # the slow app never held more than its own slots


def test_a_receipt_that_cannot_be_rendered_fails_its_attempts_with_the_reason(
    db: Database, receiver: Receiver
) -> None:
    """A corrupt receipt row (a timezone no version writes) must not kill its delivery
    silently and hold the receipt claimed: each attempt fails with the reason, and the
    policy ends it (dead), visible in `receipts list`."""
    priced_app(db, "app1", receiver.url)
    with db.writer.begin() as conn:
        conn.execute(sa.text("UPDATE receipts SET timezone = 'Mars/Base'"))
    deliver(db)
    assert receiver.received == []
    (receipt,) = Outbox(db).list()
    assert (receipt.status, receipt.attempts) == (ReceiptStatus.DEAD, 3)
    assert receipt.last_error is not None
    assert receipt.last_error.startswith("could not make the receipt: ")
    assert "Mars/Base" in receipt.last_error
