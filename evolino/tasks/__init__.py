"""Data sets with the protocols of the papers (pole balancing lives in ``evolino.rl``)."""

from .anbncn import AnbncnTask
from .mackey_glass import MackeyGlassTask, mackey_glass
from .metrics import nrmse
from .sines import SinesTask, superimposed_sines

__all__ = ["superimposed_sines", "SinesTask", "mackey_glass", "MackeyGlassTask", "AnbncnTask", "nrmse"]
