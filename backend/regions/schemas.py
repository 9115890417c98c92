"""Regions API contract: divisions as the bot and the console see them, and the village import report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Why a village row was refused. Machine-readable: the console and the CLI translate them for people.
RejectReason = Literal[
    "bad_code",
    "empty_name",
    "name_too_long",
    "outside_county",
    "outside_scope",
    "prefix_mismatch",
    "unknown_township",
    "duplicate_in_file",
    "already_exists",
]


class RegionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(description="canonical 12-digit statistical code")
    name: str
    level: int = Field(ge=1, le=5, description="1 province, 2 city, 3 county, 4 township, 5 village")
    parent_code: str | None = Field(description="12-digit code of the parent; null for provinces")


class RegionFound(RegionOut):
    """A search result with where it is: the same name recurs across the country."""

    path: list[str] = Field(description="names of the ancestors, province first (empty for a province)")
    full_name: str = Field(description="the ancestors and the name, space separated: 辽宁省 朝阳市 朝阳县")


class RejectedVillage(BaseModel):
    line: int = Field(description="line of the CSV file, the header being line 1")
    code: str
    name: str
    reason: RejectReason


class VillageImportReport(BaseModel):
    accepted: int = 0
    rejected: list[RejectedVillage] = Field(default_factory=list)
