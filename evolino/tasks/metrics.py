"""Error measures: :func:`evolino.metrics.nrmse`, importable from here too."""

from ..metrics import nrmse

__all__ = ["nrmse"]
