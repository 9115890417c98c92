"""Every table, imported in one place so Alembic and the app see the whole schema."""

from backend.alerts.models import StaffAlert
from backend.alerts.warnings.models import CapFeed, CapWarning
from backend.broadcasts.models import (
    Broadcast,
    BroadcastGeoPerson,
    BroadcastRecipient,
    BroadcastVariant,
    RegionArea,
)
from backend.callbacks.models import Callback, CallbackPopulation, CallbackSample
from backend.chatstore.models import ConversationState, WebChatFileRecord, WebChatRecord, WebChatThread
from backend.claims.catastrophe.models import (
    BranchClosure,
    DisasterEvent,
    EventDailyReport,
    EventGradeChange,
    EventReportDeadline,
    EventResponse,
)
from backend.claims.index.models import IndexPayout, IndexReading
from backend.claims.models import (
    Claim,
    ClaimAttachment,
    ClaimEvent,
    ClaimPayment,
    ClaimPrepayment,
    DocumentRequest,
    SurveyReport,
)
from backend.claims.payees.models import PayeeAccount, PayeeException
from backend.enrollment.collective.models import CollectiveEnrollment, PolicyHousehold
from backend.enrollment.models import (
    Application,
    Document,
    EarTag,
    Endorsement,
    Payment,
    Policy,
    QrCampaign,
    QrScan,
    Verification,
)
from backend.inspections.models import Inspection, InspectionHazard
from backend.outbox.models import OutboxMessage
from backend.outbox.sms.models import SmsLink, SmsNumber
from backend.people.models import ChatIdentity, Enterprise, Person
from backend.phone_codes.models import PhoneCode
from backend.products.models import LiabilityRate, Product, RiskQuestion
from backend.publicity.archive.models import ArchiveRecord
from backend.publicity.models import NoticeObjection, NoticePerson, PublicityNotice
from backend.regions.models import Region
from backend.staff.models import AuditLog, StaffUser

__all__ = [
    "Application",
    "ArchiveRecord",
    "AuditLog",
    "BranchClosure",
    "Broadcast",
    "BroadcastGeoPerson",
    "BroadcastRecipient",
    "BroadcastVariant",
    "Callback",
    "CallbackPopulation",
    "CallbackSample",
    "CapFeed",
    "CapWarning",
    "ChatIdentity",
    "Claim",
    "ClaimAttachment",
    "ClaimEvent",
    "ClaimPayment",
    "ClaimPrepayment",
    "CollectiveEnrollment",
    "ConversationState",
    "DisasterEvent",
    "Document",
    "DocumentRequest",
    "EarTag",
    "Endorsement",
    "Enterprise",
    "EventDailyReport",
    "EventGradeChange",
    "EventReportDeadline",
    "EventResponse",
    "IndexPayout",
    "IndexReading",
    "Inspection",
    "InspectionHazard",
    "LiabilityRate",
    "NoticeObjection",
    "NoticePerson",
    "OutboxMessage",
    "PayeeAccount",
    "PayeeException",
    "Payment",
    "Person",
    "PhoneCode",
    "Policy",
    "PolicyHousehold",
    "Product",
    "PublicityNotice",
    "QrCampaign",
    "QrScan",
    "Region",
    "RegionArea",
    "RiskQuestion",
    "SmsLink",
    "SmsNumber",
    "StaffAlert",
    "StaffUser",
    "SurveyReport",
    "Verification",
    "WebChatFileRecord",
    "WebChatRecord",
    "WebChatThread",
]
