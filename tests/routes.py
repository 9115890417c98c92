"""The app's routes as FastAPI serves them. ``app.routes`` lists an included router as one branch (FastAPI
0.165 keeps included routers whole), so a test that reads only the top level misses nearly every route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI


def walk(routes: list[Any]) -> Iterator[Any]:
    """Every route, through the included routers."""
    for route in routes:
        router = getattr(route, "original_router", None)
        yield from walk(router.routes) if router is not None else (route,)


def all_routes(app: FastAPI) -> list[Any]:
    return list(walk(list(app.router.routes)))


def route_paths(app: FastAPI) -> set[str]:
    return {getattr(route, "path", "") for route in all_routes(app)}
