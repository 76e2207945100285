"""Seeded, realistic demo data: shared by ``voicecdr demo``, the tests and the benchmarks.

Deterministic for a given seed and ``now``: the same call makes the same CDRs, so tests can
reason about them and benchmarks can be rerun on identical data; a later ``now`` makes
new calls (new call_ids), so rerunning the demo adds data instead of conflicting.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEMO_APPKEY = "demo"
DEMO_SECRETKEY = "demo-secret"  # printed and documented: a demo, never a real tenant


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    weight: int
    national_digits: int
    answer_rate: float


COUNTRIES = (
    Country("91", 30, 10, 0.58),  # India
    Country("62", 18, 11, 0.52),  # Indonesia
    Country("55", 14, 11, 0.61),  # Brazil
    Country("63", 10, 10, 0.55),  # Philippines
    Country("52", 8, 10, 0.63),  # Mexico
    Country("234", 7, 10, 0.47),  # Nigeria
    Country("66", 6, 9, 0.66),  # Thailand
    Country("1", 4, 10, 0.49),  # United States
    Country("44", 3, 10, 0.57),  # United Kingdom
)
SERVICES = (("group_call", 45), ("verification", 35), ("notification", 20))
# (hangup_cause, sip_hangup_disposition, weight) for calls that were not answered.
UNANSWERED = (
    ("NO_ANSWER", "recv_cancel", 40),
    ("USER_BUSY", "recv_refuse", 20),
    ("CALL_REJECTED", "recv_refuse", 12),
    ("NO_USER_RESPONSE", "recv_cancel", 10),
    ("UNALLOCATED_NUMBER", "recv_refuse", 8),
    ("NORMAL_TEMPORARY_FAILURE", "recv_refuse", 6),
    ("ORIGINATOR_CANCEL", "send_cancel", 4),
)
IVR_KEYS = ("1", "2", "3", "9", "0", "12#", "*")

# The demo app's rate plan (the CSV `voicecdr rates import` reads): a catch-all per service,
# cheaper routes for the big destinations, and one `*` row for Brazil's non-group calls.
DEMO_PLAN = """\
service,prefix,cycle,unit_price,basic_price
group_call,,20,0.05,0.005
group_call,91,20,0.012,0.001
group_call,62,20,0.02,0.002
group_call,1,60,0.009,0
verification,,1,0.012,0
verification,91,1,0.004,0
notification,,6,0.018,0.001
notification,44,6,0.024,0.001
*,55,30,0.03,0.003
"""


def _pick(rng: random.Random, options: Sequence[Any], weights: Sequence[int]) -> Any:
    return rng.choices(options, weights=weights)[0]


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def generate(
    appkeys: Sequence[str],
    count: int,
    *,
    now: int,
    days: float = 3,
    seed: int = 7,
    weights: Sequence[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """``count`` canonical CDRs spread over the ``days`` before ``now``.

    ``weights`` skews calls between the appkeys (default: even). Times follow a daily
    curve (busier in the day), a call placed in one batch shares its messageid, and about
    45-65 % of calls connect depending on the country.
    """
    rng = random.Random(f"{seed}:{now}")  # new times need new call_ids, or they conflict
    countries = list(COUNTRIES)
    country_weights = [c.weight for c in COUNTRIES]
    service_names = [s for s, _ in SERVICES]
    service_weights = [w for _, w in SERVICES]
    span = int(days * 86400)
    show_numbers = [f"{rng.randrange(10**8, 10**9)}" for _ in range(12)]
    messageid = uuid.UUID(int=rng.getrandbits(128)).hex
    for n in range(count):
        if n % 25 == 0:  # a campaign or message: a run of calls shares its messageid
            messageid = uuid.UUID(int=rng.getrandbits(128)).hex
        appkey = _pick(rng, appkeys, weights) if weights else appkeys[n % len(appkeys)]
        country = _pick(rng, countries, country_weights)
        service = _pick(rng, service_names, service_weights)
        # Busier between 08:00 and 21:00 local-ish: reject some night-time draws.
        while True:
            placed = now - rng.randrange(60, span)
            hour = (placed // 3600 + 8) % 24
            if 8 <= hour <= 21 or rng.random() < 0.25:
                break
        ring = rng.randint(2, 25)
        connected = rng.random() < country.answer_rate
        record: dict[str, Any] = {
            "call_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "appkey": appkey,
            "service": service,
            "messageid": messageid,
            "phone": str(
                rng.randrange(10 ** (country.national_digits - 1), 10**country.national_digits)
            ),
            "country_code": country.code,
            "show_phone": rng.choice(show_numbers),
            "time": _iso(placed),
        }
        if connected:
            talk = (
                max(1, int(rng.lognormvariate(3.0, 0.8)))
                if service == "group_call"
                else rng.randint(8, 45)
            )
            answered = placed + ring
            record.update(
                start_time=_iso(answered),
                end_time=_iso(answered + talk),
                second=talk,
                connected=True,
                hangup_cause="NORMAL_CLEARING",
                hangup_disposition=rng.choice(("recv_bye", "send_bye")),
            )
        else:
            cause, disposition, _ = _pick(rng, UNANSWERED, [w for *_, w in UNANSWERED])
            record.update(
                start_time=None,
                end_time=_iso(placed + ring),
                second=0,
                connected=False,
                hangup_cause=cause,
                hangup_disposition=disposition,
            )
        if service == "group_call" and connected and rng.random() < 0.7:
            record["ivr_result"] = rng.choice(IVR_KEYS)
        if service == "notification" and connected and rng.random() < 0.3:
            record["record_url"] = f"https://recordings.example.com/{record['call_id']}.wav"
        yield record
