"""First-run preparation for `tianbao serve` and `tianbao migrate`: schema, reference data, admin."""

from __future__ import annotations

from dataclasses import dataclass

from backend.db import Database
from backend.migrate import upgrade_to_head
from backend.products.service import load_catalogue
from backend.regions.service import load_divisions
from backend.settings import Settings
from backend.staff.service import AdminBootstrap, ensure_admin


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


async def bootstrap(db: Database, settings: Settings) -> BootstrapReport:
    loaded = await prepare_database(db)
    async with db.session() as session:
        admin = await ensure_admin(session=session, password=settings.admin_password or None)
    return BootstrapReport(regions_loaded=loaded, admin=admin)
