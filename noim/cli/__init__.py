"""The ``noim`` command line: a thin shell that parses input, calls one service, formats output.

The commands are listed in ``noim.cli.commands`` and their modules imported only when
used (``noim.cli.lazy``), so that ``noim --help`` and one-record commands start fast.
"""

from __future__ import annotations

from noim.cli.common import main, noim_cli

__all__ = ["main", "noim_cli"]
