"""Use cases.  Each public function takes the ``Database`` and the acting user
(``Actor``), runs in one transaction, checks permissions, validates, and lets
the audit writer record every change.  Interfaces (CLI, later web) call these
and nothing below them.
"""
