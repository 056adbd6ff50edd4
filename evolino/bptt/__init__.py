"""Backpropagation through time for the exact LSTM Evolino evolves: the gradient baseline.

:mod:`evolino.bptt.grad` holds the forward and backward passes (equations in its
docstring), :mod:`evolino.bptt.trainer` the :class:`BPTTTrainer`.
"""

from .grad import forward, loss_and_grad, teacher_forcing
from .trainer import BPTTTrainer

__all__ = ["BPTTTrainer", "forward", "loss_and_grad", "teacher_forcing"]
