"""What every simulation core shares: the rejection a sender reads, and the checks of a
command's values. Pure like every ``sim`` package: no Django, no clock, no shared random."""
from .validate import Rejected, clean_int, clean_name

__all__ = ["Rejected", "clean_int", "clean_name"]
