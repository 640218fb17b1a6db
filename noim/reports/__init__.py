"""Report building blocks shared by the analysis scripts and the DMC reports.

``noim.reports.figures``: Kaplan–Meier and cumulative incidence figures with numbers at risk
(matplotlib, Agg backend, no pyplot state) and a deterministic PNG + SVG writer.
"""

from __future__ import annotations
