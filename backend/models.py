"""Every table, imported in one place so Alembic and the app see the whole schema."""

from backend.outbox.models import OutboxMessage
from backend.people.models import ChatIdentity, Person
from backend.regions.models import Region
from backend.staff.models import AuditLog, StaffUser

__all__ = ["AuditLog", "ChatIdentity", "OutboxMessage", "Person", "Region", "StaffUser"]
