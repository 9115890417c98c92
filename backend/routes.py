"""Every router, included in one place. Routes are authenticated by default: each router declares
its caller (staff with roles, the bot with its service token, or both for reference data)."""

from __future__ import annotations

from fastapi import FastAPI

from backend.alerts.api import bot_router as messages_bot_router
from backend.alerts.api import router as alerts_router
from backend.alerts.warnings.api import router as warnings_router
from backend.broadcasts.api import areas_router as region_areas_router
from backend.broadcasts.api import bot_router as broadcasts_bot_router
from backend.broadcasts.api import router as broadcasts_router
from backend.callbacks.api import bot_router as callbacks_bot_router
from backend.callbacks.api import router as callbacks_router
from backend.claims.api import bot_router as claims_bot_router
from backend.claims.api import collective_router as claims_collective_router
from backend.claims.catastrophe.api import router as events_router
from backend.claims.catastrophe.response_api import bot_router as branches_bot_router
from backend.claims.catastrophe.response_api import branches_router
from backend.claims.catastrophe.response_api import router as event_response_router
from backend.claims.evidence import router as documents_router
from backend.claims.index.api import bot_router as index_bot_router
from backend.claims.index.api import router as index_router
from backend.claims.payees.api import exceptions_router as payee_exceptions_router
from backend.claims.payees.api import router as payee_accounts_router
from backend.claims.staff_api import router as claims_staff_router
from backend.enrollment.api import bot_router as enrollment_bot_router
from backend.enrollment.api import service_router as attachments_router
from backend.enrollment.api import staff_router as enrollment_staff_router
from backend.enrollment.campaign_api import router as campaigns_router
from backend.enrollment.collective.api import bot_router as collective_bot_router
from backend.enrollment.collective.api import staff_router as collective_staff_router
from backend.inspections.api import bot_router as inspections_bot_router
from backend.inspections.api import router as inspections_router
from backend.outbox.api import router as outbox_router
from backend.outbox.sms.api import bot_router as links_bot_router
from backend.outbox.sms.api import router as sms_router
from backend.people.api import router as bot_router
from backend.phone_codes.api import router as phone_codes_router
from backend.products.api import router as products_router
from backend.publicity.api import bot_router as publicity_bot_router
from backend.publicity.api import public_router as publicity_public_router
from backend.publicity.api import router as publicity_router
from backend.regions.api import router as regions_router
from backend.staff.api import auth_router, staff_router


def include_routers(app: FastAPI) -> None:
    # The chat identity routes first: every chat step resolves through them, and FastAPI tries the
    # routes in order (staff-only routers are hit by people, a few times a minute, not per message).
    app.include_router(bot_router)
    app.include_router(phone_codes_router)
    app.include_router(auth_router)
    app.include_router(staff_router)
    app.include_router(regions_router)
    app.include_router(products_router)
    app.include_router(campaigns_router)
    app.include_router(enrollment_bot_router)
    app.include_router(enrollment_staff_router)
    app.include_router(collective_bot_router)
    app.include_router(collective_staff_router)
    app.include_router(documents_router)
    app.include_router(attachments_router)
    app.include_router(claims_bot_router)
    app.include_router(messages_bot_router)
    app.include_router(claims_collective_router)
    app.include_router(claims_staff_router)
    app.include_router(payee_exceptions_router)
    app.include_router(payee_accounts_router)
    app.include_router(alerts_router)
    app.include_router(index_router)
    app.include_router(index_bot_router)
    app.include_router(events_router)
    app.include_router(event_response_router)
    app.include_router(branches_router)
    app.include_router(branches_bot_router)
    app.include_router(sms_router)
    app.include_router(links_bot_router)
    app.include_router(outbox_router)
    app.include_router(callbacks_bot_router)
    app.include_router(callbacks_router)
    app.include_router(publicity_router)
    app.include_router(publicity_bot_router)
    app.include_router(publicity_public_router)  # /p/<token>: the public page, no login
    app.include_router(warnings_router)
    app.include_router(broadcasts_router)
    app.include_router(broadcasts_bot_router)
    app.include_router(region_areas_router)
    app.include_router(inspections_router)
    app.include_router(inspections_bot_router)
