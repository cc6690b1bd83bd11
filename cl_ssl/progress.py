"""A tqdm progress bar per training experience, showing the step's loss terms."""

from __future__ import annotations

from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm


class ProgressPlugin(SupervisedPlugin):
    """One bar per experience over all its epochs' iterations.

    Args:
        label: Shown before the bar (the strategy's name).
    """

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.bar: tqdm | None = None

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        total = len(strategy.dataloader) * strategy.train_epochs
        exp = strategy.experience.current_experience
        self.bar = tqdm(total=total, desc=f"{self.label} exp {exp}", leave=False, unit="step")

    def after_training_iteration(self, strategy, *args, **kwargs) -> None:
        if self.bar is not None:
            if self.bar.n % 50 == 0:  # reading the terms waits for the device: not every step
                terms = {k: f"{v.item():.3f}" for k, v in strategy.loss_terms.items()}
                self.bar.set_postfix(terms, refresh=False)
            self.bar.update()

    def after_training_exp(self, strategy, *args, **kwargs) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
