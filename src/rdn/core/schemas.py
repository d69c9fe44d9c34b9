"""Shared Pydantic pieces of the JSON API."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class StrictIn(BaseModel):
    """Input bodies: unknown fields are refused, naming the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageMeta(BaseModel):
    total: int
    page: int
    per_page: int
    pages: int
    total_exact: bool = Field(True, description="false: there are more than `total` (the count stopped there)")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    meta: PageMeta
