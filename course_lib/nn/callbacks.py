"""Callbacks hook into ``Sequential.fit``: History records, EarlyStopping stops."""

import numpy as np


class Callback:
    def on_train_begin(self, model):
        pass

    def on_epoch_end(self, epoch, logs, model):
        pass

    def on_train_end(self, model):
        pass


class History(Callback):
    """``history.history[name]`` is the per-epoch list of a logged value."""

    def on_train_begin(self, model):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs, model):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Early stopping is a regularizer: it ends training before the model starts
    fitting the noise of the training set. ``restore_best_weights`` rolls the
    model back to its best epoch.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, restore_best_weights=False):
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.mode = "max" if "acc" in monitor else "min"

    def on_train_begin(self, model):
        self.best = -np.inf if self.mode == "max" else np.inf
        self.best_weights = None
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs, model):
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r} but fit logs only {sorted(logs)}; "
                "pass validation_data=... to fit to get val_ values."
            )
        value = logs[self.monitor]
        better = value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta
        if better:
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            model.stop_training = True

    def on_train_end(self, model):
        if self.restore_best_weights and self.best_weights is not None:
            model.set_weights(self.best_weights)
