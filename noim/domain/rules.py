"""The rules registry: every validation rule noim applies, with its id, severity and subject.

Two kinds of rule are listed:

* ``inline`` rules are checked by the service that writes the record (field checks,
  code lists, cross-field checks); they refuse the write (``hard``).
* ``set`` rules are cross-record checks written as one set-based SQL query each
  (``noim.db.rule_checks``).  They run before every unit of work commits, restricted
  to the children it touched, and over the whole database in ``noim check``.  A
  ``hard`` set rule refuses the write; a ``soft`` one accepts it and opens a data query.

Registering a rule is one line of ``_REGISTRY`` below:
``ID  severity  kind  table.field  description (what is expected)``.
A test fails when a rule id used anywhere in ``noim/`` is missing here or listed twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HARD = "hard"
SOFT = "soft"
SEVERITIES = (HARD, SOFT)
INLINE = "inline"
SET = "set"
RULE_KINDS = (INLINE, SET)

#: what a rule id looks like (2-3 capital letters, a dash, 3 digits)
RULE_ID = re.compile(r"^[A-Z]{2,3}-\d{3}$")

# --------------------------------------------------------------------------- plausibility bounds

#: CNS-010: consent may come before entry to care (e.g. a parent consenting while care
#: proceedings start) but not by more than a year (366 days allows for a leap day) ...
CONSENT_BEFORE_ENTRY_MAX_DAYS = 366
#: ... and is expected within the recruitment window: no more than 3 years after entry
#: (3 x 365 days + 1 leap day).
CONSENT_AFTER_ENTRY_MAX_DAYS = 1096
#: RND-020: randomisation follows the earliest entry to care of the family's children
#: within 2 years (2 x 365 days + 1 leap day); children enter the trial soon after entry.
RANDOMISATION_AFTER_ENTRY_MAX_DAYS = 731

# --------------------------------------------------------------------------- the registry

# One rule per line: id, severity, kind, table.field, description of what is expected.
_REGISTRY = """
ASM-001 hard inline assessments.instrument_id  an instrument noim knows (instrument definition files)
ASM-002 hard inline item_responses.value  responses valid for the instrument (items, allowed values, form)
ASM-003 hard inline assessments.respondent_type  a respondent type the instrument allows
ASM-004 hard inline item_responses.missing_reason  a missing reason from the code list
ASM-005 hard inline item_responses.missing_reason  no missing reason for an answered item
ASM-006 hard inline assessments.timepoint_code  a timepoint of the trial definition
ASM-007 hard inline assessments.assessed_on  a date from the child's date of birth to today
ASM-008 hard inline assessments.assessed_on  a follow-up dated on or after the family's randomisation
ASM-009 hard inline assessments.instrument_id  an instrument registered in this database
ASM-010 soft set assessments.respondent_carer_id  a carer respondent who cared for the child on the assessment date (a child_carers link covering it)
ASM-011 hard set assessments.assessed_on  a follow-up assessment (any timepoint after the first) not dated before the family's randomisation
ASM-012 hard inline assessments.form  the form of the instrument the child's age on the assessment date calls for (the definition's form_ages)
ASM-013 hard inline assessments.-  an entered assessment with at least one answer or missing-data code
AUD-001 hard inline audit_log.table_name  an audited table
AUD-002 hard inline audit_log.row_key  a table and the key (or trial ID) of one of its records
AUD-003 hard inline audit_log.recorded_at  a date range whose end is on or after its start
AUD-004 hard inline -.-  a page number from 1 and a page size the list allows
CHD-001 hard inline children.entered_care_on  entry to care on or after the date of birth
CHD-002 hard inline children.entered_care_on  entry to care at age 0-60 months
CHD-003 hard inline children.date_of_birth  dates of birth and entry to care not after today
CHD-004 hard inline children.sex  a sex from the code list
CHD-005 hard inline children.legal_route_code  a legal route into care of the site's jurisdiction
CHD-006 hard inline children.-  only correctable fields in a child correction
CHD-010 hard set children.date_of_birth  a date of birth on or before entry to care
CHD-011 soft set children.entered_care_on  a child aged 0-60 months at entry to care
CNS-001 hard inline consents.consenter_type  a consenter type from the code list
CNS-002 hard inline consents.form_version  the consent form's version
CNS-003 hard inline consents.birth_parent_id  the birth parent or carer who consented, of the child's family or site
CNS-004 hard inline consents.consented_on  a consent date on or after the date of birth
CNS-010 soft set consents.consented_on  a plausible consent date: on or after birth, not after today, at most 1 year before and 3 years after entry to care
DEV-001 hard inline protocol_deviations.child_id  a child of the deviation's family
DEV-002 hard inline protocol_deviations.severity  minor or major
DEV-003 hard inline protocol_deviations.occurred_on  a date not after today
DEV-004 hard inline protocol_deviations.category  a category (not empty)
DEV-005 hard inline protocol_deviations.description  a description (not empty)
DEV-006 hard inline protocol_deviations.family_id  a family and child that are not voided
DEV-007 hard inline protocol_deviations.occurred_on  a date on or after the date of birth of the child concerned (or of the family's eldest child)
ELG-001 hard inline children.eligibility_decided_on  an eligibility decision on or after entry to care
ELG-002 hard inline children.ineligibility_reason  a reason for finding a child ineligible
ELG-003 hard inline children.eligibility_decided_on  an eligibility decision not after today
ENR-001 hard inline children.-  1 to 20 children registered with a new family at once
FAM-001 hard inline families.local_authority_id  a local authority of the family's site
FAM-002 hard inline families.in_care_proceedings  a family in care proceedings where the site requires it
FAM-003 hard inline families.voided_at  a family that is not voided
FAM-004 hard inline families.voided_at  only families not yet randomised are voided
FRZ-001 hard inline data_freezes.label  a freeze label of at most 128 characters
ID-001 hard inline children.trial_id  a well-formed trial ID with a valid check character
ID-002 hard inline children.trial_id  a family ID for a family, a child ID for a child
IDN-001 hard inline child_identities.-  only known identity fields
IDN-002 hard inline child_identities.-  a reason for changing identifiable details already recorded
IDN-003 hard inline child_identities.-  a reason that does not repeat the identifiable details it changes
IMP-001 hard inline -.-  an import file that can be read: UTF-8 CSV, known settings
IMP-002 hard inline -.-  a header with every required column and no unknown column
IMP-003 hard inline -.-  one cell per header column in every row
IMP-004 hard inline -.child_id  the trial ID of a registered, live child at one of your sites
IMP-005 hard inline -.-  a readable cell: required cells filled; dates, numbers and codes well formed
IMP-010 hard inline -.-  a row that agrees with the stored record it matches (no overwriting by import)
IMP-011 hard inline -.-  each record once in a file
IMP-020 hard inline legal_proceedings.-  both proceedings columns or neither
IMP-021 hard inline legal_proceedings.-  one stored proceedings matching the row
IMP-061 hard inline families.-  exactly one of family_ref and family_id in a families row
IMP-062 hard inline families.site_id  a known site
IMP-063 hard inline families.site_id  a site or family at one of your sites
IMP-064 hard inline families.-  rows of one family_ref agreeing on site, local authority and care proceedings
IMP-065 hard inline families.trial_id  the trial ID of a registered family
IMP-066 hard inline families.-  a family_ref matching one stored family wholly, or none
IMP-067 hard inline children.child_number  a child number from 1 to 99 not used in the family
IMP-080 hard inline screening_log.site_id  a known site in a screening row
IMP-081 hard inline screening_log.site_id  a screening row of a site you work at
IMP-082 hard inline screening_log.family_id  the trial ID of a registered family to enrol
IMP-083 hard inline screening_log.reference  a reference matching at most one stored entry of the site
IMP-090 hard inline protocol_deviations.family_id  the trial ID of a registered family at one of your sites
IMP-100 hard inline -.-  the uploaded file exactly as previewed, still kept on the server
LGL-001 hard inline legal_proceedings.kind  a proceedings kind of the child's jurisdiction
LGL-002 hard inline legal_events.event_date  legal dates on or after the date of birth
LGL-003 hard inline legal_events.event_date  legal dates not after today
LGL-004 hard inline legal_proceedings.ended_on  an end on or after the start, recorded once
LGL-005 hard inline legal_events.event_type_code  an event type of the child's jurisdiction or any
LGL-006 hard inline legal_events.proceedings_id  live proceedings of the same child
LGL-007 hard inline legal_proceedings.court_or_panel  at most 128 characters
LGL-008 hard inline legal_events.voided_at  a record that is not voided
LGL-009 hard inline children.voided_at  a child that is not voided
LGL-010 hard set legal_events.event_date  a legal event or decision dated on or after the start of its proceedings
LGL-021 hard inline legal_events.-  only correctable fields in a correction
LGL-022 hard inline legal_proceedings.voided_at  proceedings without live events, to void
LGL-023 hard inline decision_types.jurisdiction  a known jurisdiction
LTF-001 hard inline losses_to_follow_up.declared_on  a declaration date not after today
LTF-002 hard inline losses_to_follow_up.last_contact_on  last contact on or before the declaration
LTF-003 hard inline losses_to_follow_up.last_contact_on  last contact on or after entry to care
LTF-004 hard inline losses_to_follow_up.child_id  a randomised child
LTF-005 hard inline losses_to_follow_up.child_id  a child not withdrawn from follow-up or data use
LTF-006 hard inline losses_to_follow_up.child_id  a child not already lost to follow-up
LTF-007 hard inline losses_to_follow_up.reason  a reason (not empty)
LTF-008 hard inline losses_to_follow_up.declared_on  a declaration on or after randomisation
LTF-009 hard inline losses_to_follow_up.child_id  a child that is not voided
PLC-001 hard inline placements.placement_type  a placement type from the code list
PLC-002 hard inline placements.start_date  a start on or after the date of birth
PLC-003 hard inline placements.start_date  start and end dates not after today
PLC-004 hard inline placements.end_date  an end on or after the start
PLC-005 hard inline placements.end_reason  an end reason from the code list
PLC-006 hard inline placements.end_reason  an end date and an end reason together, or neither
PLC-007 hard inline placements.carer_id  a live carer at the child's site
PLC-008 hard inline placements.local_authority_id  a local authority of the child's site
PLC-009 hard inline children.voided_at  a child that is not voided
PLC-010 hard set placements.start_date  placements of a child that do not overlap (one may start the day the previous ends)
PLC-011 soft set placements.start_date  a placement starting on or after the child's entry to care
PLC-021 hard inline placements.end_date  an open placement to end; exactly one open placement to move from
PLC-022 hard inline placements.voided_at  a placement that is not voided
PLC-023 hard inline placements.-  only correctable fields in a placement correction
PPL-001 hard inline birth_parents.parent_role  a parent role from the code list
PPL-002 hard inline birth_parents.year_of_birth  a plausible year of birth
PPL-003 hard inline birth_parents.previous_child_removed  previous child removed recorded for birth mothers only
PPL-004 hard inline families.voided_at  a family and child that are not voided
PPL-005 hard inline child_birth_parents.child_id  a child of the parent's family
PPL-006 hard inline child_carers.start_date  a link starting on or after the child's date of birth
PPL-007 hard inline child_carers.start_date  dates not after today
PPL-008 hard inline child_carers.start_date  no overlapping link of the same person and child
PPL-009 hard inline carers.carer_type  a carer type from the code list
PPL-010 hard inline carers.reference  a carer reference of at most 32 characters
PPL-011 hard inline child_carers.relationship  a relationship from the code list
PPL-012 hard inline child_carers.carer_id  a carer at the child's family's site
PPL-013 hard inline child_carers.end_date  an end date on or after the start
PPL-014 hard inline child_carers.end_date  a link not already ended
PPL-015 hard inline carers.voided_at  a person and link that are not voided
PPL-016 hard inline carer_identities.-  only known identity fields
PPL-017 hard inline carers.voided_at  a person no live link, consent or assessment still names, to void
QRY-001 hard inline data_queries.status  a status change the query workflow allows
QRY-002 hard inline data_query_messages.body  a message that is not empty
QRY-003 hard inline data_queries.table_name  a table of trial data
QRY-004 hard inline data_queries.row_key  the key of an existing record of that table
QRY-005 hard inline data_queries.field  a field of that table
QRY-006 hard inline data_queries.status  a query status from the code list
QRY-007 hard inline data_queries.raised_at  an age range in days: from 0, its upper end not below its lower end
QRY-008 hard inline -.-  a page number from 1 and a page size the list allows
PWD-001 hard inline user_credentials.password_hash  a password of at least 12 (at most 1024) characters
PWD-002 hard inline user_credentials.password_hash  a password that does not contain the user name
PWD-003 hard inline user_credentials.password_hash  a password not in the list of common passwords shipped with noim
PWD-004 hard inline user_credentials.password_hash  a new password, not the current one
PWD-005 hard inline user_credentials.password_hash  the user's current password, given again to change it
RCV-001 hard inline intervention_receipts.family_id  the trial ID of a registered, live family at one of your sites
RCV-002 hard inline intervention_receipts.family_id  a randomised family (receipt is recorded after allocation)
RCV-003 hard inline intervention_receipts.started_on  a start date when the intervention was received, and none when it was not
RCV-004 hard inline intervention_receipts.started_on  a start date on or after the family's randomisation
RCV-005 hard inline intervention_receipts.started_on  a start date not after today
RCV-006 hard inline intervention_receipts.reason  a reason from the code list when not received, and none when received
RCV-007 hard inline intervention_receipts.details  details when the reason is other; none when received
RCV-008 hard inline intervention_receipts.family_id  no live receipt record for the family yet (correct the current one, with a reason)
RCV-009 hard inline intervention_receipts.family_id  a live receipt record to correct
RCV-010 hard inline intervention_receipts.-  a correction that changes the record
RCV-011 hard inline intervention_receipts.received  yes or no (received the allocated intervention)
RND-001 hard inline families.voided_at  a family that is not voided, to randomise
RND-002 hard inline families.in_care_proceedings  a family in care proceedings where the site requires it
RND-003 hard inline children.-  at least one child in the family
RND-004 hard inline children.eligibility_status  every child's eligibility confirmed
RND-005 hard inline consents.-  a recorded consent for every child
RND-006 hard inline allocations.stratum  every stratification factor known
RND-007 hard inline allocation_list.position  an unused slot in the sealed list for the stratum
RND-008 hard inline allocation_list.-  the sealed list unchanged since it was generated
RND-010 hard inline randomisation_state.method  the set-up command of the trial's randomisation method
RND-011 hard inline randomisation_state.seed  randomisation set up once only
RND-012 hard inline randomisation_state.seed  a seed from 0 to 2^63-1
RND-013 hard inline allocation_list.-  1 to 100000 slots per stratum
RND-014 hard inline allocations.randomised_at  a back-dated randomisation (synthetic trials and tests only): timezone-aware, not after now
RND-015 hard inline families.trial_id  a registered family at one of your sites, in a batch randomisation
RND-016 hard inline allocations.family_id  a family not yet randomised and named once in a batch randomisation
RND-017 hard inline -.-  a batch randomisation file that can be read, with a family_id column
RND-018 hard inline masking_key.key_hex  a masking key of 64 hex digits (synthetic trials and tests only)
RND-020 soft set allocations.randomised_at  a randomisation date from the earliest entry to care of the family's children to 2 years after it
SAE-001 hard inline serious_adverse_events.category  an SAE category from the code list
SAE-002 hard inline serious_adverse_events.relatedness  a relatedness from the code list
SAE-003 hard inline serious_adverse_events.outcome  an outcome from the code list
SAE-004 hard inline serious_adverse_events.reported_on  onset on or before the report
SAE-005 hard inline serious_adverse_events.reported_on  a report date not after today
SAE-006 hard inline serious_adverse_events.onset_date  onset on or after the date of birth
SAE-007 hard inline serious_adverse_events.description  a description (not empty)
SAE-008 hard inline serious_adverse_events.-  only updatable SAE fields
SAE-009 hard inline serious_adverse_events.completed_at  relatedness, expectedness and outcome before completion
SAE-010 hard inline serious_adverse_events.completed_at  an SAE not already complete
SAE-011 hard inline serious_adverse_events.voided_at  an SAE and child that are not voided
SCR-001 hard inline screening_log.screened_on  a screening date not after today
SCR-002 hard inline screening_log.n_children  1 to 20 children
SCR-003 hard inline screening_log.ineligible_reason  a reason for ineligibility
SCR-004 hard inline screening_log.declined  declined only when eligible
SCR-005 hard inline screening_log.declined_reason  a reason for declining
SCR-006 hard inline screening_log.local_authority_id  a local authority of the site
SCR-007 hard inline screening_log.reference  a reference of at most 32 characters
SCR-008 hard inline screening_log.family_id  an entry not voided, eligible and not declined, to enrol
SCR-009 hard inline screening_log.family_id  a family at the entry's site
SCR-010 hard inline screening_log.family_id  an entry and family not already linked
SCR-011 hard inline screening_log.family_id  a family that is not voided
SCR-012 hard inline screening_log.family_id  a family registered on or after screening
SCR-013 hard inline screening_log.-  a screening log filter from the list
SCR-014 hard inline screening_log.voided_at  an entry no live family was registered from, to void
SRV-001 hard inline unit_costs.code  a unit-cost code of letters, digits, . _ -
SRV-002 hard inline unit_costs.code  a unit-cost code not already used
SRV-003 hard inline unit_costs.service  service and unit described (not empty)
SRV-004 hard inline unit_costs.cost  a cost of at least 0 with at most 2 decimals
SRV-005 hard inline unit_costs.currency  a three-letter currency code
SRV-006 hard inline unit_costs.price_year  a plausible price year
SRV-007 hard inline service_use.unit_cost_id  a known unit-cost code
SRV-008 hard inline service_use.quantity  a quantity of at least 0
SRV-009 hard inline service_use.period_end  a period ending on or after its start
SRV-010 hard inline service_use.period_start  a period not before the date of birth
SRV-011 hard inline service_use.period_end  a period not after today
SRV-012 hard inline service_use.child_id  a child that is not voided
SRV-013 hard inline service_use.source  a source of at most 64 characters
SRV-014 hard inline service_use.unit_cost_id  a service the role may record: blinded roles do not record services that reveal the arm
TFA-001 hard inline user_credentials.totp_last_step  the 6-digit code the authenticator app shows now (each code works once)
TFA-002 hard inline user_credentials.totp_enabled  no second factor set up yet, to set one up
TFA-003 hard inline user_credentials.totp_enabled  a user who has a second factor, to remove it
TXT-001 hard inline -.-  text without control characters: none in a single-line field (String(n) columns); tab, newline and carriage return only in free text (Text columns); never NUL, other C0 controls, DEL or unpaired surrogates
TXT-002 hard inline -.-  a single-line field no longer than its column (String(n) in noim/db/models)
USR-001 hard inline users.name  a user name of 2-64 letters, digits and . _ @ -
USR-002 hard inline user_sites.site_id  sites for site-scoped roles only, at least one
USR-003 hard inline user_sites.site_id  a known site code
USR-004 hard inline users.role_code  a known role
USR-005 hard inline users.active  not deactivating yourself
USR-006 hard inline user_sites.site_id  a site the user belongs to
VIS-001 hard inline followup_visits.timepoint_code  a scheduled visit of the child at that timepoint
VIS-002 hard inline followup_visits.child_id  a child that is not voided
VIS-003 hard inline followup_visits.completed_on  a completion date not after today
VIS-004 hard inline followup_visits.completed_on  a completion on or after the date of birth
VIS-005 hard inline followup_visits.completed_on  a completion on or after the visit's anchor date
VIS-006 hard inline followup_visits.completed_on  a follow-up completed on or after randomisation
VIS-007 hard inline followup_visits.status  a visit still scheduled (reopen it first)
VIS-008 hard inline followup_visits.status  missed only once the window has opened
VIS-009 hard inline followup_visits.status  a visit with an outcome, to reopen
VIS-010 hard inline followup_visits.status  a status filter from the list
VIS-020 hard inline post_randomisation_exclusions.-  a family and child that are not voided
VIS-021 hard inline post_randomisation_exclusions.family_id  a randomised family
VIS-022 hard inline post_randomisation_exclusions.identified_on  an exclusion on or after randomisation
VIS-023 hard inline post_randomisation_exclusions.identified_on  an exclusion date not after today
VIS-024 hard inline post_randomisation_exclusions.-  a child or family not already excluded
WEB-001 hard inline -.-  a date as dd/mm/yyyy (or yyyy-mm-dd from a date picker)
WEB-002 hard inline -.-  a whole number
WEB-003 hard inline -.-  one of the choices the form offers
WEB-004 hard inline -.-  a required field filled in
WDR-001 hard inline withdrawals.level  a withdrawal level from the code list
WDR-002 hard inline withdrawals.requested_by  a requester from the code list
WDR-003 hard inline withdrawals.withdrawn_on  a withdrawal date from entry to care to today
WQ-001 hard inline -.-  a work queue of 1 to 500 rows per section
"""


@dataclass(frozen=True)
class Rule:
    """One validation rule: what it is about and what it expects."""

    id: str
    severity: str
    kind: str
    table: str
    #: the field the rule is about (``None`` when it is about the record as a whole)
    field: str | None
    description: str


def parse_registry(text: str) -> list[Rule]:
    """The rules of a registry text (one per line); ``ValueError`` on a malformed line."""
    rules: list[Rule] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 4)
        if len(parts) != 5 or "." not in parts[3]:
            raise ValueError(
                f"rules registry line {n}: {line!r}: expected ID SEVERITY KIND T.F TEXT"
            )
        rule_id, severity, kind, subject, description = parts
        table, field = subject.split(".", 1)
        if not RULE_ID.match(rule_id) or severity not in SEVERITIES or kind not in RULE_KINDS:
            raise ValueError(f"rules registry line {n}: {line!r}: bad id, severity or kind")
        rules.append(
            Rule(rule_id, severity, kind, table, None if field == "-" else field, description)
        )
    return rules


RULE_LIST: tuple[Rule, ...] = tuple(parse_registry(_REGISTRY))
RULES: dict[str, Rule] = {r.id: r for r in RULE_LIST}


def rule(rule_id: str) -> Rule:
    """The registered rule ``rule_id`` (``KeyError`` naming the id when it is not registered)."""
    try:
        return RULES[rule_id]
    except KeyError:
        raise KeyError(f"rule {rule_id} is not in the registry (noim/domain/rules.py)") from None


# --------------------------------------------------------------------------- violations


@dataclass(frozen=True)
class Violation:
    """One record that breaks a set rule, as found by its SQL check."""

    rule: str
    table: str
    #: the primary key of the offending row, as text
    row_key: str
    field: str
    #: the value seen, as text
    value: str
    #: the child's trial ID (the family's for family-level records such as allocations)
    trial_id: str
    site_id: int | None
    #: what was expected, with the values it was compared to
    expected: str
    #: the child's id (``None`` for family-level records) and the family's
    child_id: int | None = None
    family_id: int | None = None

    @property
    def severity(self) -> str:
        return rule(self.rule).severity

    @property
    def record(self) -> str:
        return f"{self.table} {self.row_key} ({self.trial_id})"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies the violation for its data query: rule, table, row key, field."""
        return (self.rule, self.table, self.row_key, self.field)

    @property
    def message(self) -> str:
        """What was received and what was expected, for the data query (never an arm)."""
        return f"{self.record}, field {self.field}: got {self.value}; expected {self.expected}"
