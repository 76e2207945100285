"""The order in which the rater and the sender take the apps on Citus."""

from __future__ import annotations

import logging

import pytest

from voicecdr.errors import DatabaseUnavailable
from voicecdr.workers.turns import Unreachable, rotated


def test_each_pass_starts_one_app_later_and_wraps() -> None:
    order = rotated([], [3, 1, 2])
    assert order == [1, 2, 3]
    starts = []
    for _ in range(4):
        order = rotated(order, [1, 2, 3])
        starts.append(order[0])
    assert starts == [2, 3, 1, 2]


def test_a_new_or_removed_app_keeps_the_turn() -> None:
    assert rotated([2, 3, 1], [1, 3, 4]) == [3, 4, 1]
    assert rotated([4, 1, 3], [1, 3]) == [1, 3]


def test_a_skipped_app_is_logged_once_until_every_node_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = Unreachable(logging.getLogger("test.turns"), "rate the CDRs")
    down = DatabaseUnavailable("a database node is unreachable")

    def failing() -> set[int]:
        raise down

    with caplog.at_level(logging.INFO, logger="test.turns"):
        for _ in range(3):  # polls during the outage: every app tried, app 2 logged once
            assert unreachable.worth_trying([1, 2, 3], failing) == [1, 2, 3]
            unreachable.skipped(2, down)
        assert [r.getMessage() for r in caplog.records].count(
            "cannot rate the CDRs of an app now; skipping it until its node is back"
        ) == 1
        # Every node answers: only the apps with work are tried, app 2 is back.
        assert unreachable.worth_trying([1, 2, 3], lambda: {3}) == [3]
        assert unreachable.faults == {}
        assert caplog.records[-1].getMessage() == "rate the CDRs of an app again"
