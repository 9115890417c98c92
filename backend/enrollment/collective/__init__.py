"""Collective enrollment (R-ENR-1): a village committee or agricultural organisation enrolls its households
from one household list (分户标的投保清单)."""
