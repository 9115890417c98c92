"""Administrative divisions (R-ENR-12): the platform's list is the reference for every address."""

from __future__ import annotations

from enum import IntEnum

from sqlmodel import Field, SQLModel


class RegionLevel(IntEnum):
    PROVINCE = 1
    CITY = 2
    COUNTY = 3
    TOWNSHIP = 4
    VILLAGE = 5


class Region(SQLModel, table=True):
    __tablename__ = "region"

    # Canonical 12-digit statistical code, e.g. township 110101001 -> 110101001000.
    code: str = Field(primary_key=True, max_length=12)
    name: str = Field(index=True, max_length=100)
    level: int = Field(index=True)
    parent_code: str | None = Field(default=None, index=True, max_length=12)
