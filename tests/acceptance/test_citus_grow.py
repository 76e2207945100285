"""A Citus cluster changing under a running ``voicecdr serve``: a worker added and the
shards rebalanced onto it while CDRs are ingested and queried, and a worker stopped for a
few seconds. The tests share one cluster (coordinator + 2 workers) in file order: the
stopped-worker test leaves its two workers running again, then the grow test adds a third
(a test that finds the cluster grown gets a fresh one). Each test has its own database."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.acceptance.conftest import Background, Cli, Result, Server
from tests.support.citus import WORKERS, CitusCluster
from tests.support.data import canonical
from tests.support.postgres import PostgresServer
from tests.support.receiver import Receiver, receiving
from voicecdr.models import CostStatus, ReceiptStatus

pytestmark = pytest.mark.citus

TOKEN = "citus-grow-token-0123456789"
SECRET = "grow-secret"
APPS = [f"grow{i}" for i in range(8)]
BATCH = 20  # CDRs per POST, all of one app (the way a switch's batches come)
MAX_BATCHES = 2000  # the ingest loop's bound, whatever happens to the rebalance
QUERY = "/api/voiceSms/getVoiceCdr"
FMT = "%Y-%m-%d %H:%M:%S"
# How voicecdr names a Citus worker it cannot reach (storage/engine.py).
UNREACHABLE = "a database node is unreachable (a Citus worker down or restarting)"


@dataclass(frozen=True)
class Window:
    """Where every CDR of a test is placed, and the query window that holds them all."""

    first: datetime  # the earliest placement: today's partition, made by db upgrade
    now: datetime

    @classmethod
    def today(cls) -> Window:
        now = datetime.now(UTC).replace(microsecond=0)
        midnight = now.replace(hour=0, minute=0, second=0)
        return cls(max(midnight, now - timedelta(minutes=30)), now)

    def placed(self, n: int) -> str:
        span = max(1, int((self.now - self.first).total_seconds()))
        return (self.first + timedelta(seconds=n % span)).strftime(FMT)

    def query(self, appkey: str, page: int = 1, page_size: int = 100) -> dict[str, str]:
        return {
            "appkey": appkey,
            "secretkey": SECRET,
            "voiceType": "0",
            "start_time": (self.now - timedelta(hours=1)).strftime(FMT),
            "end_time": (self.now + timedelta(hours=1)).strftime(FMT),
            "page": str(page),
            "page_size": str(page_size),
        }


@dataclass
class Ledger:
    """What the ingest loop sent and what was acknowledged, per app: a query answer's
    total must lie between the acknowledged count before it was asked and the count sent
    (acknowledged or still in flight) when it came back."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: Counter[str] = field(default_factory=Counter)
    acked: dict[str, set[str]] = field(default_factory=lambda: {app: set() for app in APPS})
    failures: list[str] = field(default_factory=list)  # every 5xx or wrong answer, described
    answered: list[float] = field(default_factory=list)  # when each checked answer came
    acked_at: list[float] = field(default_factory=list)  # when each batch was acknowledged

    def acked_count(self, app: str) -> int:
        with self.lock:
            return len(self.acked[app])

    def sent_count(self, app: str) -> int:
        with self.lock:
            return self.sent[app]

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


class SharedCluster:
    """The module's cluster (its own: these tests change its nodes), started when a test
    first asks for it, and started afresh for a test that finds it grown or a node down."""

    def __init__(self) -> None:
        self._cluster: CitusCluster | None = None

    def two_workers(self) -> CitusCluster:
        if self._cluster is not None and not _as_started(self._cluster):
            self.stop()
        if self._cluster is None:
            self._cluster = CitusCluster()
            self._cluster.start()
        return self._cluster

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None


def _as_started(cluster: CitusCluster) -> bool:
    """Whether ``cluster`` has its first two workers only, and every node answers."""
    if len(cluster.workers) != WORKERS:
        return False
    try:
        for node in cluster.nodes:
            psycopg.connect(node.url(), connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="module")
def shared_cluster(citus_required: None) -> Iterator[SharedCluster]:
    shared = SharedCluster()
    try:
        yield shared
    finally:
        shared.stop()


@pytest.fixture
def cluster(shared_cluster: SharedCluster) -> CitusCluster:
    return shared_cluster.two_workers()


def for_each_app(run: Callable[[str], Result]) -> None:
    """``run`` (a CLI command) for every app, two at a time: set-up, the apps independent."""
    with ThreadPoolExecutor(2) as pool:
        for app, done in zip(APPS, pool.map(run, APPS), strict=True):
            assert done.code == 0, (app, done.err)


@contextlib.contextmanager
def tenants(cli: Cli, cluster: CitusCluster, database: str, *options: str) -> Iterator[Cli]:
    """``cli`` on a new migrated database ``database`` on ``cluster`` with the apps
    ``APPS`` (``options`` added to each ``apps create``); the database is dropped after."""
    cli.env["VOICECDR_DATABASE_URL"] = cluster.create_database(database)
    try:
        assert cli("db", "upgrade").code == 0
        for_each_app(
            lambda app: cli("apps", "create", "--name", app, "--appkey", app, "--secretkey",
                            SECRET, "--timezone", "UTC", "--rate-limit", "1000000", *options)
        )  # fmt: skip
        cli.env["VOICECDR_INGEST_TOKEN"] = TOKEN
        yield cli
    finally:
        cluster.drop_database(database)


@pytest.fixture
def grow_cli(tmp_path: Path, cluster: CitusCluster) -> Iterator[Cli]:
    with tenants(Cli(tmp_path, ""), cluster, "voicecdr_grow") as cli:
        yield cli


@contextlib.contextmanager
def serving(cli: Cli) -> Iterator[Server]:
    # API processes only, as docs/scaling.md deploys them: no rater writing meanwhile.
    server = Server(cli, "--no-workers", "--workers", "2")
    try:
        server.wait_ready(timeout=60)
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(grow_cli: Cli) -> Iterator[Server]:
    with serving(grow_cli) as server:
        yield server


class Worker(Background):
    """``voicecdr worker`` (the rater and the receipt sender) in the background."""

    def __init__(self, cli: Cli) -> None:
        self.log = cli.cwd / "worker.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                cli.command("worker"), cwd=cli.cwd, env=cli.env, stdout=log, stderr=log
            )


def records(app: str, names: list[str], window: Window, start: int) -> list[dict[str, Any]]:
    # The messageid is the call id, so the query API's rows name the CDRs they are.
    return [
        canonical(name, appkey=app, time=window.placed(start + i), tz="UTC", messageid=name)
        for i, name in enumerate(names)
    ]


def post(client: httpx.Client, batch: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/v1/cdrs", json=batch, headers={"Authorization": f"Bearer {TOKEN}"})


def ingest_loop(url: str, window: Window, ledger: Ledger, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for n in range(MAX_BATCHES):
            if stop.is_set():
                return
            app = APPS[n % len(APPS)]
            names = [f"b{n}-{i}" for i in range(BATCH)]
            with ledger.lock:
                ledger.sent[app] += BATCH
            answer = post(client, records(app, names, window, n * BATCH))
            if answer.status_code == 200 and answer.json()["accepted"] == BATCH:
                with ledger.lock:
                    ledger.acked[app].update(names)
                    ledger.acked_at.append(time.monotonic())
            else:
                ledger.fail(f"POST /v1/cdrs batch {n}: {answer.status_code} {answer.text}")


def query_loop(url: str, window: Window, ledger: Ledger, stop: threading.Event) -> None:
    """Asks each app's page 1 in turn until ``stop``, checking every answer."""
    asked = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            app = APPS[asked % len(APPS)]
            low = ledger.acked_count(app)
            answer = client.post(QUERY, data=window.query(app, page_size=10))
            high = ledger.sent_count(app)
            asked += 1
            body = answer.json() if answer.status_code == 200 else None
            if body is None or body["code"] != "1":
                ledger.fail(f"query {app}: {answer.status_code} {answer.text}")
                continue
            total, rows = body["info"]["total"], body["info"]["rows"]
            if not low <= total <= high:
                ledger.fail(f"query {app}: total {total} not in [{low}, {high}], {len(rows)} rows")
            elif len(rows) != min(total, 10):  # a total and rows of two moments
                ledger.fail(f"query {app}: total {total}, {len(rows)} rows")
            ledger.answered.append(time.monotonic())


def every_messageid(client: httpx.Client, window: Window, app: str) -> tuple[int, set[str]]:
    """The app's total and every row's messageid, read page by page through the API."""
    found: set[str] = set()
    page, total = 1, None
    while total is None or (page - 1) * 1000 < total:
        body = client.post(QUERY, data=window.query(app, page, 1000)).json()
        assert body["code"] == "1", body
        assert total in (None, body["info"]["total"]), "the total changed between pages"
        total = body["info"]["total"]
        found |= {row["messageid"] for row in body["info"]["rows"]}
        page += 1
    assert total is not None
    return total, found


def placements(url: str) -> Counter[int]:
    """How many shards of ``cdrs`` each node port holds (pg_dist_shard_placement)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.nodeport, count(*) FROM pg_dist_shard_placement p "
            "JOIN pg_dist_shard s USING (shardid) WHERE s.logicalrelid = 'cdrs'::regclass "
            "GROUP BY p.nodeport"
        ).fetchall()
    return Counter(dict(rows))


def app_nodes(url: str) -> dict[str, int]:
    """The node port that holds each app's shard of ``cdrs``."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.appkey, p.nodeport FROM apps a "
            "JOIN pg_dist_shard_placement p "
            "ON p.shardid = get_shard_id_for_distribution_column('cdrs', a.id)"
        ).fetchall()
    return dict(rows)


SKIPPED_RATING = "cannot rate the CDRs of an app now; skipping it until its node is back"
SKIPPED_SENDING = "cannot claim the receipts of an app now; skipping it until its node is back"
PLAN = "service,prefix,cycle,unit_price,basic_price\n*,,6,0.05,0\n"


@dataclass(frozen=True)
class Progress:
    """One app's CDRs as the rater and the sender left them, read with statements that
    name the app (routed to its node)."""

    pending: int  # CDRs not yet rated
    final: int
    delivered: int  # receipts delivered


def progress(url: str, app_id: int) -> Progress:
    with psycopg.connect(url) as conn:
        pending, final = conn.execute(
            "SELECT count(*) FILTER (WHERE cost_status = %s), "
            "count(*) FILTER (WHERE cost_status = %s) FROM cdrs WHERE app_id = %s",
            (int(CostStatus.PENDING), int(CostStatus.FINAL), app_id),
        ).fetchone() or (0, 0)
        delivered = conn.execute(
            "SELECT count(*) FROM receipts WHERE app_id = %s AND status = %s",
            (app_id, int(ReceiptStatus.DELIVERED)),
        ).fetchone()
    return Progress(pending, final, delivered[0] if delivered else 0)


def wait_rated_and_delivered(
    url: str, ids: dict[str, int], acked: Counter[str], apps: list[str]
) -> None:
    """Wait until every CDR acknowledged for ``apps`` is rated and its receipt delivered
    (by the running ``voicecdr worker``), at most 60 s."""
    deadline = time.monotonic() + 60
    for app in apps:
        done = Progress(0, acked[app], acked[app])
        while (now := progress(url, ids[app])) != done:
            assert time.monotonic() < deadline, (app, now, done)
            time.sleep(0.3)


def first_worker(cluster: CitusCluster) -> PostgresServer:
    """The worker Citus serialises reference-table writes and row locks through, the
    lowest (host name, port) (``GetFirstPrimaryWorkerNode`` in Citus's source): special
    enough that both workers are stopped in turn."""
    return min(cluster.workers, key=lambda worker: ("127.0.0.1", worker.port))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture
def outage_cli(tmp_path: Path, cluster: CitusCluster, receiver: Receiver) -> Iterator[Cli]:
    """The apps on a database of their own, each with a rate plan and its callback URL at
    ``receiver``."""
    plan = tmp_path / "plan.csv"
    plan.write_text(PLAN)
    cli = Cli(tmp_path, "")
    cli.env["VOICECDR_ALLOW_PRIVATE_CALLBACKS"] = "true"
    callback = ("--callback-url", f"{receiver.url}/dr")
    with tenants(cli, cluster, "voicecdr_outage", *callback) as cli:
        for_each_app(lambda app: cli("rates", "import", app, str(plan)))
        yield cli


@pytest.fixture
def outage_server(outage_cli: Cli) -> Iterator[Server]:
    with serving(outage_cli) as server:
        yield server


@pytest.fixture
def rating(outage_cli: Cli) -> Iterator[Worker]:
    """A ``voicecdr worker`` rating and delivering (started once: it must recover by
    itself)."""
    worker = Worker(outage_cli)
    try:
        yield worker
    finally:
        worker.stop()


def test_a_stopped_worker_gives_a_retryable_error_then_recovers(
    cluster: CitusCluster,
    outage_cli: Cli,
    outage_server: Server,
    receiver: Receiver,
    rating: Worker,
) -> None:
    url, server = outage_cli.env["VOICECDR_DATABASE_URL"], outage_server
    window = Window.today()
    acked: Counter[str] = Counter()
    client = httpx.Client(base_url=server.url, timeout=60)
    with psycopg.connect(url) as conn:
        ids: dict[str, int] = dict(conn.execute("SELECT appkey, id FROM apps").fetchall())

    def ingest(app: str, tag: str) -> httpx.Response:
        names = [f"{tag}-{i}" for i in range(BATCH)]
        answer = post(client, records(app, names, window, sum(acked.values())))
        if answer.status_code == 200:
            assert answer.json()["accepted"] == BATCH, answer.text
            acked[app] += BATCH
        return answer

    def refused(answer: httpx.Response) -> None:
        # Ingest's problem for an unavailable database: 503, Retry-After, nothing stored.
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"].isdigit()
        detail = answer.json()["detail"]
        assert detail.startswith(f"store CDRs failed: {UNREACHABLE}"), detail
        assert detail.endswith("nothing was stored, retry later"), detail

    def query(app: str) -> httpx.Response:
        return client.post(QUERY, data=window.query(app, page_size=10))

    def total(app: str) -> dict[str, Any]:
        answer = query(app)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    with client:
        for app in APPS:
            assert ingest(app, "before").status_code == 200
        wait_rated_and_delivered(url, ids, acked, APPS)
        nodes = app_nodes(url)
        skipped = 0  # apps the worker skipped while their node was down
        first = first_worker(cluster)
        other = next(worker for worker in cluster.workers if worker is not first)
        # Each worker stopped in turn, then started again.
        for down in (other, first):
            on_down = [app for app in APPS if nodes[app] == down.port]
            elsewhere = [app for app in APPS if nodes[app] != down.port]
            assert on_down, nodes
            assert elsewhere, nodes
            down.halt()
            try:
                # /readyz asks the coordinator, which answers: the API hosts stay in the
                # load balancer, serving what does not need the stopped worker.
                assert client.get("/readyz").status_code == 200
                for app in on_down:
                    refused(ingest(app, f"down{down.port}"))
                    # The query API's failure for it (HTTP 200, as NXCloud clients expect),
                    # retryable (a Retry-After header).
                    assert query(app).headers["retry-after"] == "5"
                    assert total(app) == {
                        "code": "0",
                        "info": "the database is unavailable; retry later",
                        "error": "internal",
                    }
                for app in elsewhere:
                    # Queries are routed to the app's own node: answered, exact.
                    answer = total(app)
                    assert answer["code"] == "1", answer
                    assert answer["info"]["total"] == acked[app]
                    stored = ingest(app, f"down{down.port}")
                    assert stored.status_code == 200, stored.text
                # The worker rates the other apps' new CDRs and delivers their receipts,
                # app by app (workers/turns.py); `voicecdr rate` too, then fails naming
                # the fault, as the stopped worker's apps are left pending.
                wait_rated_and_delivered(url, ids, acked, elsewhere)
                rated = outage_cli("rate")
                assert rated.code == 1, rated.err
                *warned, error = rated.err.splitlines()
                assert error == f"Error: rate CDRs failed: {UNREACHABLE}"
                assert warned == [SKIPPED_RATING] * len(on_down)
                # A change to a reference table (apps, rate plans) is written to every
                # node: refused while one is down, with the same named fault.
                changed = outage_cli("apps", "update", APPS[0], "--rate-limit", "999")
                assert (changed.code, changed.err) == (
                    1,
                    f"Error: update app failed: {UNREACHABLE}\n",
                )
            finally:
                down.resume()
            skipped += len(on_down)

            # Back without restarting voicecdr: the next requests succeed, the data is
            # exact (the refused batches left nothing behind).
            deadline = time.monotonic() + 30
            for app in APPS:
                while (retried := ingest(app, f"after{down.port}")).status_code != 200:
                    assert time.monotonic() < deadline, retried.text
                    time.sleep(0.5)
            for app in APPS:
                body = total(app)
                assert body["code"] == "1", body
                assert body["info"]["total"] == acked[app], app
            # The stopped worker's apps are rated and their receipts delivered by the same
            # worker process, which was not restarted.
            wait_rated_and_delivered(url, ids, acked, APPS)
            assert outage_cli("rate").code == 0
    assert server.process.poll() is None
    assert rating.process.poll() is None
    # Each app on a stopped worker was logged once per outage by the rater and the sender,
    # not once per poll.
    logs = rating.logs()
    assert logs.count(SKIPPED_RATING) == skipped, logs
    assert logs.count(SKIPPED_SENDING) == skipped, logs
    # Nothing was priced twice: one receipt per CDR, each CDR's charge written once, and
    # the receiver saw each receipt (at least once, by webhook-id).
    with psycopg.connect(url) as conn:
        receipts = conn.execute(
            "SELECT count(*), count(DISTINCT (app_id, cdr_id)) FROM receipts"
        ).fetchone()
        revisions = conn.execute("SELECT min(revision), max(revision) FROM cdrs").fetchone()
    everything = sum(acked.values())
    assert receipts == (everything, everything)
    assert revisions == (1, 1)
    assert len(receiver.by_webhook_id()) == everything


def wait_until(what: str, done: Callable[[], bool], ledger: Ledger) -> None:
    """Wait for ``done`` (at most 60 s), failing with ``what`` and the ledger's failures."""
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, (what, ledger.failures[:5])
        time.sleep(0.1)


def test_a_worker_added_and_shards_rebalanced_under_load_loses_nothing(
    cluster: CitusCluster, grow_cli: Cli, server: Server
) -> None:
    url = grow_cli.env["VOICECDR_DATABASE_URL"]
    window, ledger, stop = Window.today(), Ledger(), threading.Event()
    before = placements(url)
    assert len(before) == 2, before  # the two workers hold every shard
    ingest = threading.Thread(target=ingest_loop, args=(server.url, window, ledger, stop))
    query = threading.Thread(target=query_loop, args=(server.url, window, ledger, stop))
    ingest.start()
    query.start()
    try:
        # Answers before the change, once every app has CDRs acknowledged.
        wait_until(
            "answers and CDRs of every app before the change",
            lambda: (
                all(ledger.acked_count(app) for app in APPS) and len(ledger.answered) >= len(APPS)
            ),
            ledger,
        )
        began = time.monotonic()
        added = cluster.add_worker()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT citus_rebalance_start()")
            conn.execute("SET statement_timeout = '180s'")
            conn.execute("SELECT citus_rebalance_wait()")
            status = conn.execute("SELECT state FROM citus_rebalance_status()").fetchone()
        ended = time.monotonic()
        wait_until(
            "answers after the change",
            lambda: sum(t > ended for t in ledger.answered) >= len(APPS),
            ledger,
        )
    finally:
        stop.set()
        ingest.join(timeout=120)
        query.join(timeout=120)
    assert not ingest.is_alive()
    assert not query.is_alive()
    assert status == ("finished",), status
    assert ledger.failures == [], ledger.failures[:5]
    # Checked answers before, during and after the change.
    phases = Counter((t > began) + (t > ended) for t in ledger.answered)
    assert min(phases[0], phases[1], phases[2]) >= len(APPS), phases
    ingested = Counter((t > began) + (t > ended) for t in ledger.acked_at)
    assert min(ingested[0], ingested[1], ingested[2]) > 0, ingested  # ingest ran throughout

    after = placements(url)
    print(  # the figures docs/scaling.md quotes (shown with pytest -s)
        f"grow: {sum(map(len, ledger.acked.values()))} CDRs acknowledged, "
        f"{len(ledger.answered)} answers checked {dict(phases)}, worker added and "
        f"rebalanced in {ended - began:.1f} s, cdrs shards per port {dict(before)} -> {dict(after)}"
    )
    assert after[added.port] > 0, after  # shards really moved to the new worker
    assert sum(after.values()) == sum(before.values())
    moved = [app for app, port in app_nodes(url).items() if port == added.port]
    assert moved, "no app's shard is on the new worker"

    # Every acknowledged CDR is there, read through the API, and nothing else is.
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for app in APPS:
            total, found = every_messageid(client, window, app)
            assert ledger.acked[app], app
            assert (total, found) == (len(ledger.acked[app]), ledger.acked[app]), app
