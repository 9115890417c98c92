"""Staff downloads of stored files: a claim's evidence follows the claim's scope.

A loss photo is uploaded by the farmer's chat before any claim exists, so it carries no policy or
application of its own; enrollment's scope (``verification.scoped_document``) knew only those and hid
every loss photo from regional staff. Whoever may see a claim (any staff role, in the claim's region) may
see the files attached to it; any other file keeps enrollment's scope. The route lives here, not in
enrollment, because claims sit above enrollment (enrollment never imports claims).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.claims.models import Claim, ClaimAttachment
from backend.deps import SessionDep, StaffDep
from backend.enrollment import verification
from backend.enrollment.api import _file_response
from backend.enrollment.models import Document
from backend.ids import Id
from backend.security import StaffPrincipal

router = APIRouter(prefix="/api/documents", tags=["enrollment"])


async def claim_regions_of(session: AsyncSession, document_id: int) -> list[str]:
    """The regions of the claims a file is attached to (usually one; none for enrollment's files)."""
    query = (
        select(Claim.region_code)
        .join(ClaimAttachment, col(ClaimAttachment.claim_id) == col(Claim.id))
        .where(ClaimAttachment.document_id == document_id)
    )
    return list((await session.exec(query)).all())


async def scoped_file(*, session: AsyncSession, actor: StaffPrincipal, document_id: int) -> Document:
    """A stored file as a staff member may see it: attached to a claim in their region, or in enrollment's
    scope (its policy, its application, or its uploader's own unattached upload). Else 404, as for a claim
    outside the region."""
    if any(actor.covers_region(code) for code in await claim_regions_of(session, document_id)):
        document = await session.get(Document, document_id)
        if document is not None:
            return document
    return await verification.scoped_document(session=session, actor=actor, document_id=document_id)


@router.get("/{document_id}")
async def get_document(document_id: Id, staff: StaffDep, session: SessionDep) -> Response:
    return _file_response(await scoped_file(session=session, actor=staff, document_id=document_id))
