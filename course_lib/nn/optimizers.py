"""Optimizers update parameters in place from their gradients.

SGD:       W ← W − α dW
momentum:  v ← μ v − α dW ;  W ← W + v        (Keras' convention)
Adam:      m ← β₁m + (1−β₁)dW ;  s ← β₂s + (1−β₂)dW² ;
           W ← W − αₜ m / (√s + ε),  αₜ = α √(1−β₂ᵗ) / (1−β₁ᵗ)

Momentum equals PyTorch's v ← μ v + dW ; W ← W − α v (its v is ours divided by −α)
as long as α does not change. Adam folds both bias corrections into αₜ, as Keras
and Kingma & Ba's "efficient version" do: that is α m̂ / (√ŝ + ε/√(1−β₂ᵗ)), so ε
sits on √s, not on √ŝ as in PyTorch. The two agree exactly for ε = 0 and differ
only for gradients about as small as ε.
"""

import numpy as np


class Optimizer:
    def __init__(self, learning_rate):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        self.learning_rate = float(learning_rate)

    def update(self, params, grads):
        """Update each array in ``params`` in place using the matching gradient."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


class SGD(Optimizer):
    """(Minibatch) gradient descent, optionally with momentum μ."""

    def __init__(self, learning_rate=0.01, momentum=0.0):
        super().__init__(learning_rate)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self._velocity = None

    def update(self, params, grads):
        lr = self.learning_rate
        if self.momentum == 0.0:
            for p, g in zip(params, grads):
                p -= lr * g
            return
        if self._velocity is None:
            self._velocity = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self._velocity):
            v *= self.momentum
            v -= lr * g
            p += v


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with Keras' defaults (ε = 1e-7 on √s; see the module docstring)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._m = self._s = None
        self._t = 0

    def update(self, params, grads):
        if self._m is None:
            self._m = [np.zeros_like(p) for p in params]
            self._s = [np.zeros_like(p) for p in params]
        self._t += 1
        b1, b2 = self.beta_1, self.beta_2
        # Fold both bias corrections into one step size.
        step = self.learning_rate * np.sqrt(1 - b2**self._t) / (1 - b1**self._t)
        for p, g, m, s in zip(params, grads, self._m, self._s):
            m *= b1
            m += (1 - b1) * g
            s *= b2
            s += (1 - b2) * (g * g)
            p -= step * m / (np.sqrt(s) + self.epsilon)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "momentum": lambda: SGD(0.01, momentum=0.9)}


def get_optimizer(spec):
    """An Optimizer instance from a name ("sgd", "adam", "momentum") or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    try:
        return OPTIMIZERS[spec]()
    except (KeyError, TypeError):
        known = ", ".join(sorted(OPTIMIZERS))
        raise ValueError(f"Unknown optimizer {spec!r}. Choose one of: {known}.") from None
