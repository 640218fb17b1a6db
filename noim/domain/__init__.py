"""Pure-Python trial rules: no SQL, no I/O beyond reading package data."""
