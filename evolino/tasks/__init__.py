"""Data sets with the protocols of the papers (pole balancing lives in ``evolino.rl``)."""

from .anbncn import AnbncnTask
from .lorenz import LorenzTask, lorenz63, normalized_error, valid_prediction_time, valid_steps
from .mackey_glass import MackeyGlassTask, mackey_glass
from .metrics import nrmse
from .narma import Narma10Task, narma10, narma10_response
from .realdata import LaserTask, santafe_laser
from .sines import SinesTask, superimposed_sines

__all__ = ["superimposed_sines", "SinesTask", "mackey_glass", "MackeyGlassTask", "AnbncnTask", "nrmse",
           "lorenz63", "LorenzTask", "valid_prediction_time", "valid_steps", "normalized_error",
           "narma10", "narma10_response", "Narma10Task", "santafe_laser", "LaserTask"]
