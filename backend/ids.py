"""The range of a database id, for every id a request names (path, query or body).

Every id column is an ``Integer`` (PostgreSQL int4): 2,147,483,648 and up is refused by the driver (a
500 before this type) and above 2^63-1 by SQLite. Bounded here, such an id is a 422 from validation, and
the published schema tells a client the range."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

MAX_ID = 2**31 - 1

# Plain metadata, not ``Path()``/``Query()``/``Field()``: the same type serves a path parameter, a query
# parameter and a body field, and FastAPI still infers where a parameter comes from.
Id = Annotated[int, Interval(ge=1, le=MAX_ID)]
