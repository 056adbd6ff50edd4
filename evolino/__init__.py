"""evolino: LSTM networks trained by neuroevolution (Evolino, Schmidhuber et al. 2007).

Quick start::

    from evolino import Evolino
    from evolino.tasks import SinesTask
    task = SinesTask(terms=2)
    net = Evolino(n_cells=10, seed=0).fit(task.train_series)
    generated = net.generate(300, Y_prefix=task.train_series)
"""

from ._validate import EvolinoError, EvolinoWarning
from .bptt import BPTTTrainer
from .lstm import LSTMSpec, LSTMState, forward, initial_state, prepare, step
from .model import EvolinoNetwork
from .readout import Linear
from .search import CMAES, ESP, make_strategy
from .trainer import Evolino

__version__ = "0.1.0"

__all__ = ["Evolino", "EvolinoNetwork", "BPTTTrainer", "LSTMSpec", "LSTMState", "forward", "initial_state", "prepare", "step",
           "Linear", "ESP", "CMAES", "make_strategy", "EvolinoError", "EvolinoWarning",
           "EvolinoRegressor", "EvolinoClassifier", "__version__"]

_LAZY = {"EvolinoRegressor": "estimators", "EvolinoClassifier": "estimators"}  # scikit-learn loads on first use


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
