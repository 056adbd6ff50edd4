"""evolino: LSTM networks trained by neuroevolution (Evolino, Schmidhuber et al. 2007)."""

from .lstm import LSTMSpec, LSTMState, forward, initial_state, prepare, step
from .readout import Linear

__version__ = "0.1.0"

__all__ = ["LSTMSpec", "LSTMState", "forward", "initial_state", "prepare", "step", "Linear", "__version__"]
