"""Pagination for lists: every list in RDN is paged, with a total, for pages and the API alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int
    exact: bool = True  # False: there are more than ``total`` (a list whose count was capped)

    @property
    def pages(self) -> int:
        """The number of pages (a lower bound when the count was capped: this page, and one more if full)."""
        if not self.exact:
            return max(self.page + (1 if self.has_next else 0), -(-self.total // self.per_page))
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        if not self.exact:
            return len(self.items) == self.per_page
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def first_index(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.per_page)

    def meta(self) -> dict[str, Any]:
        return {"total": self.total, "page": self.page, "per_page": self.per_page, "pages": self.pages,
                "total_exact": self.exact}


def paginate(session: Session, stmt: Select[Any], *, page: int = 1, per_page: int = 25) -> Page[Any]:
    page = max(1, page)
    per_page = max(1, min(MAX_PER_PAGE, per_page))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    query = stmt.limit(per_page).offset((page - 1) * per_page)
    items = list(session.scalars(query).all())
    return Page(items, total, page, per_page)
