"""App by app on Citus: the rater and the receipt sender take the apps in turn, each
app's work in statements routed to the node that holds it, so a node down stops only its
own apps (docs/scaling.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..errors import DatabaseUnavailable


def rotated(previous: list[int], apps: list[int]) -> list[int]:
    """``apps`` (ids, any order), in the order of the pass after ``previous``: each pass
    starts one app later than the last, so no app is always first (nor always last)."""
    ordered = sorted(apps)
    if not previous or not ordered:
        return ordered
    start = next((i for i, app in enumerate(ordered) if app > previous[0]), 0)
    return ordered[start:] + ordered[:start]


class Unreachable:
    """The apps skipped because their node is unreachable, each logged once per outage:
    when first skipped, and when its work succeeds again."""

    def __init__(self, log: logging.Logger, work: str) -> None:
        self._log = log
        self._work = work
        self.faults: dict[int, DatabaseUnavailable] = {}  # the last fault, by app id

    def skipped(self, app_id: int, fault: DatabaseUnavailable) -> None:
        if app_id not in self.faults:
            self._log.warning(
                f"cannot {self._work} of an app now; skipping it until its node is back",
                extra={"app": app_id, "error": str(fault)},
            )
        self.faults[app_id] = fault

    def done(self, app_id: int) -> None:
        if self.faults.pop(app_id, None) is not None:
            self._log.info(f"{self._work} of an app again", extra={"app": app_id})

    def worth_trying(self, apps: list[int], with_work: Callable[[], set[int]]) -> list[int]:
        """Of ``apps`` (in order), those ``with_work`` says have work: one statement on
        every node, which keeps a poll with no work cheap however many apps there are.
        While a node is down that statement fails, and every app is tried (each routed to
        its own node); once it succeeds, every node answered, so no app is skipped."""
        try:
            found = with_work()
        except DatabaseUnavailable:
            return apps
        for app_id in list(self.faults):
            self.done(app_id)
        return [app for app in apps if app in found]
