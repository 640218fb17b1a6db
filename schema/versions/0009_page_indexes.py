"""page indexes

Revision ID: 0009_page_indexes
Revises: 0008_web_auth

Three indexes for the web pages at 10,000 families (benchmarks/web.py):

* ``followup_visits (status, window_start)``: the coordinators' work queue and ``noim
  followups due`` read the scheduled visits whose window has opened; without it every
  family of the site was walked, child by child.
* ``audit_log (table_name) WHERE field = '(rows)'``, partial: a record's history looks for
  the grouped audit rows of its table (``noim.services.audit._group_keys``); only the
  grouped rows are indexed (one per assessment), so the audit log's writes barely pay.
* ``screening_log (site_id, screened_on, id)``: the screening log's page, a site's entries
  newest first, is read in index order and stops after a page (a sort of every entry
  before).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from noim.db.data_loss import refuse_data_loss

revision: str = "0009_page_indexes"
down_revision: str | Sequence[str] | None = "0008_web_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUPED = sa.text("field = '(rows)'")


def upgrade() -> None:
    op.create_index(
        "ix_followup_visits_status_window_start",
        "followup_visits",
        ["status", "window_start"],
        unique=False,
    )
    op.create_index(
        "ix_audit_log_grouped_table",
        "audit_log",
        ["table_name"],
        unique=False,
        sqlite_where=GROUPED,
        postgresql_where=GROUPED,
    )

    op.create_index(
        "ix_screening_log_site_screened",
        "screening_log",
        ["site_id", "screened_on", "id"],
        unique=False,
    )


def downgrade() -> None:
    # drops indexes only: no rows can be lost
    refuse_data_loss(op, revision)
    op.drop_index("ix_screening_log_site_screened", table_name="screening_log")
    op.drop_index("ix_audit_log_grouped_table", table_name="audit_log")
    op.drop_index("ix_followup_visits_status_window_start", table_name="followup_visits")
