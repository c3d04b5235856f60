"""Reconciliation: the discrepancies of every base database as reports an agency can act on, and the
agencies' answers."""
