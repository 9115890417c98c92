"""First-run preparation for `tianbao serve` and `tianbao migrate`: schema, reference data, admin."""

from __future__ import annotations

from dataclasses import dataclass

from backend.db import Database
from backend.migrate import upgrade_to_head
from backend.products.service import load_catalogue
from backend.refusals import refusal_message
from backend.regions.service import load_divisions
from backend.settings import Settings
from backend.staff.passwords import password_problem
from backend.staff.service import ADMIN_USERNAME, AdminBootstrap, ensure_admin


class AdminPasswordRefused(ValueError):
    """TIANBAO_ADMIN_PASSWORD does not pass the staff password rule (refused before anything is done)."""


@dataclass(frozen=True)
class BootstrapReport:
    regions_loaded: int
    admin: AdminBootstrap


async def prepare_database(db: Database) -> int:
    """Migrate to head; load the divisions and the product catalogue when missing or outdated."""
    await upgrade_to_head(db.engine)
    async with db.session() as session:
        loaded = await load_divisions(session=session)
    async with db.session() as session:
        await load_catalogue(session=session)
    return loaded


def check_admin_password(settings: Settings) -> None:
    """The first admin's password from the environment meets the rule every staff password meets."""
    problem = settings.admin_password and password_problem(settings.admin_password, ADMIN_USERNAME)
    if problem:
        reason = refusal_message(problem, "en", {})
        raise AdminPasswordRefused(f"TIANBAO_ADMIN_PASSWORD refused: {reason}")


async def bootstrap(db: Database, settings: Settings) -> BootstrapReport:
    check_admin_password(settings)
    loaded = await prepare_database(db)
    async with db.session() as session:
        admin = await ensure_admin(session=session, password=settings.admin_password or None)
    return BootstrapReport(regions_loaded=loaded, admin=admin)
