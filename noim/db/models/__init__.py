"""All noim tables.  Importing this package registers every model on ``Base.metadata``."""

from noim.db.models.assessments import Assessment, DerivedScore, Instrument, ItemResponse
from noim.db.models.audit import AuditHead, AuditLog, IdentityKey
from noim.db.models.auth import AuthEvent, RoleSecurity, UserCredential, WebSession
from noim.db.models.care import DecisionType, LegalEvent, LegalProceedings, Placement
from noim.db.models.economics import ServiceUse, UnitCost
from noim.db.models.freezes import DataFreeze, DataFreezeDataset
from noim.db.models.intervention import InterventionReceipt
from noim.db.models.org import (
    Arm,
    ArmSiteLabel,
    LocalAuthority,
    RoleRow,
    Site,
    Team,
    TimepointInstrument,
    TimepointRow,
    Trial,
    User,
    UserSite,
)
from noim.db.models.people import (
    BirthParent,
    BirthParentIdentity,
    Carer,
    CarerIdentity,
    Child,
    ChildBirthParent,
    ChildCarer,
    ChildIdentity,
    Family,
)
from noim.db.models.queries import DataQuery, DataQueryMessage
from noim.db.models.randomisation import (
    Allocation,
    AllocationListEntry,
    MaskingKey,
    PostRandomisationExclusion,
    RandomisationState,
)
from noim.db.models.recruitment import Consent, ScreeningEntry, Withdrawal
from noim.db.models.safety import LossToFollowUp, ProtocolDeviation, SeriousAdverseEvent
from noim.db.models.visits import FollowUpVisit

__all__ = [
    "Allocation",
    "AllocationListEntry",
    "Arm",
    "ArmSiteLabel",
    "Assessment",
    "AuditHead",
    "AuditLog",
    "AuthEvent",
    "BirthParent",
    "BirthParentIdentity",
    "Carer",
    "CarerIdentity",
    "Child",
    "ChildBirthParent",
    "ChildCarer",
    "ChildIdentity",
    "Consent",
    "DataFreeze",
    "DataFreezeDataset",
    "DataQuery",
    "DataQueryMessage",
    "DecisionType",
    "DerivedScore",
    "Family",
    "FollowUpVisit",
    "IdentityKey",
    "Instrument",
    "InterventionReceipt",
    "ItemResponse",
    "LegalEvent",
    "LegalProceedings",
    "LocalAuthority",
    "LossToFollowUp",
    "MaskingKey",
    "Placement",
    "PostRandomisationExclusion",
    "ProtocolDeviation",
    "RandomisationState",
    "RoleRow",
    "RoleSecurity",
    "ScreeningEntry",
    "SeriousAdverseEvent",
    "ServiceUse",
    "Site",
    "Team",
    "TimepointInstrument",
    "TimepointRow",
    "Trial",
    "UnitCost",
    "User",
    "UserCredential",
    "UserSite",
    "WebSession",
    "Withdrawal",
]
