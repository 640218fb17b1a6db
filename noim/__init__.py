"""noim: data management and analysis for the NIM infant mental health trial.

The package is layered (see docs/architecture.md): ``noim.domain`` holds pure
rules, ``noim.db`` the SQLAlchemy models and migrations, ``noim.services`` the
use cases (one transaction each, audited), ``noim.cli`` the command line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
