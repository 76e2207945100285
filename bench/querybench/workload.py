"""What is queried: the biggest tenant's busiest voiceType in one 24 h window, three ways."""

from __future__ import annotations

from dataclasses import dataclass

from voicecdr.timefmt import Window


@dataclass(frozen=True, slots=True)
class Target:
    """The tenant, voiceType and window under test, found in SQL rather than assumed."""

    app_id: int
    appkey: str
    voice_group: int
    window: Window
    total_rows: int  # all CDRs in the database
    tenant_rows: int  # the tenant's CDRs, all voiceTypes, all days
    window_rows: int  # what the API's ``total`` reports for the window


@dataclass(frozen=True, slots=True)
class Case:
    """One API request shape: a page of a given size."""

    label: str
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


# (1) a client's first page; (2) deep paging, OFFSET 49,900; (3) the largest page the API
# allows. Every request computes the window's exact total (COUNT), so (1) already measures
# "the total"; (3) adds the cost of reading and rendering the most rows one request can.
CASES = (
    Case("page 1 x100", 1, 100),
    Case("page 500 x100", 500, 100),
    Case("page 1 x1000", 1, 1000),
)


@dataclass(frozen=True, slots=True)
class PageResult:
    """A page as either side reports it, for checking they agree."""

    total: int
    ids: list[int]
