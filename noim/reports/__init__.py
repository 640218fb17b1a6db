"""Report building blocks shared by the analysis scripts and the DMC reports.

``noim.reports.figures``: Kaplan–Meier and cumulative incidence figures with numbers at risk
(matplotlib, Agg backend, no pyplot state) and a deterministic PNG + SVG writer.
``noim.reports.summaries``: CONSORT flow counts, baseline table, primary outcome summaries
(shared with ``analysis/0*_*.py``).  ``noim.reports.interim``: the data of the open and
closed interim reports; ``noim.reports.consort`` and ``noim.reports.charts``: their
figures; ``noim.reports.render``: CSV, JSON, HTML (jinja2) and PDF (see docs/reports.md).
"""

from __future__ import annotations
