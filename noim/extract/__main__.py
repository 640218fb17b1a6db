"""``python -m noim.extract > docs/analysis-datasets.md`` writes the data dictionary."""

from __future__ import annotations

import sys

from noim.extract._columns import render

if __name__ == "__main__":
    sys.stdout.write(render())
