"""SSLTemplate: Avalanche's supervised template with an SSL criterion and two-view batches.

Each minibatch arrives as raw uint8 images ``(x, y)``; the template moves it to the device,
turns ``x`` into two augmented views ``[B, 2, 3, S, S]`` with its :class:`TwoViewAugment`
right after the plugins' ``before_forward`` (so a plugin may swap raw images in or out of
the batch there, e.g. replay at equal compute), and uses the SSL method as the criterion.
Labels ``y`` ride along for evaluation only: the SSL loss never reads them. Everything else
is Avalanche's: every plugin hook (``before_training_exp``, ``before_backward``,
``after_training_exp``, ...) fires as usual.

Plugins add loss terms in exactly one place, :meth:`SSLTemplate.add_loss_term`, from
``before_backward``; the template keeps the named terms of the current step for logging.

Evaluation augments with a fixed seed per (experience, minibatch), so the evaluation SSL
loss of two models, or of two strategies, is computed on identical views, and evaluating
never consumes the training random stream.

Fast steps: forward and loss (the plugins' ``before_backward`` terms included) run under
``torch.autocast`` when ``autocast_dtype`` is given (bf16), never the backward pass or the
optimizer step; ``channels_last`` puts the model and every batch of views in that memory
format. Nothing in a step reads a tensor on the host: a non-finite loss is detected from the
losses kept on the device, checked every :attr:`SSLTemplate.finite_check_every` steps and at
every epoch's end, and reported as :class:`NonFiniteLoss` with the experience, epoch and step
of the *first* bad step (the steps after it are wasted, never reported).

Every strategy sees the same batches and views in *every* experience, not just the first:
the global random state is reseeded from ``(train_seed, k)`` once the plugins'
``before_training_exp`` has run, just before experience k's first epoch. Whatever a plugin
drew between experiences (EWC's Fisher pass, a buffer update, a predictor's
initialisation) cannot shift another strategy's data order; plugins that draw *during*
training use their own :class:`torch.Generator` (see :func:`experience_seed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from avalanche.core import BasePlugin
from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import Tensor
from torch.optim import Optimizer

from cl_ssl import distributed
from cl_ssl.augment import TwoViewAugment
from cl_ssl.data import device_resident
from cl_ssl.interim import InterimCheckpoints
from cl_ssl.methods.base import SSLMethod
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.online import RepeatedBatches
from cl_ssl.schedule import LRSchedule


def experience_seed(seed: int, experience: int, stream: str = "train") -> int:
    """A 32-bit seed derived from ``(seed, experience, stream)`` (NumPy's SeedSequence).

    ``stream`` names an independent random stream (e.g. ``"replay"``), so a plugin's own
    generator never correlates with the template's.

    Example:
        >>> experience_seed(0, 2) != experience_seed(0, 3) != experience_seed(1, 2)
        True
    """
    entropy = [seed, experience, *stream.encode()]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def lone_last_batch(images: int, batch_size: int) -> bool:
    """Whether ``images`` in batches of ``batch_size`` end with a batch of exactly one image.

    The loaders drop that batch (``drop_last``); any other remainder is kept, so an epoch
    has ``ceil(images / batch_size) - lone_last_batch(images, batch_size)`` steps.

    Example:
        >>> lone_last_batch(65, 32), lone_last_batch(66, 32), lone_last_batch(64, 32)
        (True, False, False)
    """
    return batch_size > 1 and images % batch_size == 1


class NonFiniteLoss(FloatingPointError):
    """The training loss was NaN or infinite first at ``experience``, ``epoch``, ``step``."""

    def __init__(self, message: str, experience: int, epoch: int, step: int) -> None:
        super().__init__(message)
        self.experience, self.epoch, self.step = experience, epoch, step


def views_channels_last(views: Tensor) -> Tensor:
    """``[..., C, H, W]`` views laid out channels-last, so ``flatten`` to ``[N, C, H, W]`` keeps it.

    Example:
        >>> x = views_channels_last(torch.zeros(4, 2, 3, 8, 8))
        >>> x.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
        True
    """
    dims = views.ndim
    to_last = (*range(dims - 3), dims - 2, dims - 1, dims - 3)  # C after H, W in memory
    back = (*range(dims - 3), dims - 1, dims - 3, dims - 2)
    return views.permute(to_last).contiguous().permute(back)


class SSLTemplate(SupervisedTemplate):
    """Self-supervised training on an Avalanche stream.

    Args:
        model: The embedding model (backbone + head).
        optimizer: Optimizer over the model's parameters.
        method: The SSL method; its ``__call__`` is the criterion.
        augment: The two-view augmentation applied to every minibatch.
        train_mb_size: Training batch size (images; each gives two views).
        train_epochs: Epochs per experience.
        eval_mb_size: Evaluation batch size; NT-Xent depends on it, so keep it fixed when
            comparing evaluation losses.
        device: Training device.
        plugins: Avalanche plugins, strategy plugins included.
        evaluator: Avalanche evaluation plugin.
        eval_seed: Seed of the evaluation augmentation.
        train_seed: Experience k's data order and views are seeded from
            ``(train_seed, k)``; None leaves the global random state alone.
        schedule: Learning-rate schedule, restarted every experience, stepped per iteration.
        autocast_dtype: Autocast forward and loss to this dtype (``torch.bfloat16``); None
            runs in fp32.
        channels_last: Model and views in the channels-last memory format.
        online: One pass in arrival order, each batch ``updates_per_batch`` times
            (:mod:`cl_ssl.online`).
        updates_per_batch: Updates per incoming batch in online mode.
        data_on_device: ``on``: training batches are indexed from the experience's images
            held on the device (:mod:`cl_ssl.data.device_resident`) when they are an
            in-memory tensor of at most ``device_data_max_mb``; ``auto``: so on CUDA
            only; ``off``: Avalanche's loader.
        device_data_max_mb: Largest experience (its images, in MB) held on the device.

    Example:
        >>> strategy = SSLTemplate(
        ...     model=model, optimizer=opt, method=SimCLR(), augment=augment, train_mb_size=64)
        >>> strategy.train(stream.benchmark.train_stream[0])
    """

    def __init__(
        self,
        *,
        model: SSLModel,
        optimizer: Optimizer,
        method: SSLMethod,
        augment: TwoViewAugment,
        train_mb_size: int = 256,
        train_epochs: int = 1,
        eval_mb_size: int = 256,
        device: str | torch.device = "cpu",
        plugins: Sequence[BasePlugin] | None = None,
        evaluator: EvaluationPlugin | None = None,
        eval_seed: int = 0,
        train_seed: int | None = None,
        schedule: LRSchedule | None = None,
        autocast_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        online: bool = False,
        updates_per_batch: int = 1,
        data_on_device: device_resident.DataOnDevice = "off",
        device_data_max_mb: float = 4096,
    ) -> None:
        kwargs = {} if evaluator is None else {"evaluator": evaluator}
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=method,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=list(plugins or []),
            eval_every=-1,
            **kwargs,
        )
        self.method = method
        method.setup(model)  # e.g. BYOL's target network, a copy of the fresh model
        method.to(self.device)
        self.ddp: torch.nn.Module | None = None  # the model wrapped for torchrun, training only
        if distributed.active():
            from torch.nn.parallel import DistributedDataParallel

            self.model.to(self.device)  # DDP broadcasts rank 0's weights from the device
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        self.sampler: torch.utils.data.DistributedSampler | None = None
        self.online, self.updates_per_batch = online, updates_per_batch
        self.data_on_device, self.device_data_max_mb = data_on_device, device_data_max_mb
        self.fresh_batch = True  # this step's new images are trained on for the first time
        self.schedule = schedule or LRSchedule()
        self.augment = augment
        self.eval_seed = eval_seed
        self.train_seed = train_seed
        self.loss_terms: dict[str, Tensor] = {}
        self.images_trained = 0  # images (each two views) through training steps, all plugins'
        self.steps_trained = 0
        self._eval_batch_index = 0
        self._pending_optimizer_state: dict | None = None
        self.autocast_dtype = autocast_dtype
        self.channels_last = channels_last
        # Checkpoints inside an experience, and going on from one (--checkpoint-every).
        self.interim: InterimCheckpoints | None = None
        # (loss, its terms, (experience, epoch, step)) of the steps since the last check.
        self._unchecked: list[tuple[Tensor, dict[str, Tensor], tuple[int, int, int]]] = []

    # -- state, for checkpoints (cl_ssl.state) -------------------------------------------
    def counters(self) -> dict[str, int]:
        """The template's own counters (images and steps trained so far)."""
        return {"images_trained": self.images_trained, "steps_trained": self.steps_trained}

    def load_counters(self, counters: dict[str, int]) -> None:
        """Undo :meth:`counters`."""
        self.images_trained = int(counters["images_trained"])
        self.steps_trained = int(counters["steps_trained"])

    def load_optimizer_state(self, state: dict) -> None:
        """Load ``state`` into the optimizer when the next experience starts.

        Not now: Avalanche resets the optimizer's state the first time it sees it, and
        plugins that own parameter groups (CaSSLe's predictor) add them back in their
        ``before_training_exp``; the saved state has those groups.
        """
        # Already known parameters: Avalanche's first make_optimizer would reset the moments.
        self.optimized_param_id = dict(self.model.named_parameters())
        self._pending_optimizer_state = state

    # -- the one place where plugins add to the loss ------------------------------------
    def add_loss_term(self, name: str, value: Tensor) -> None:
        """Add ``value`` to this step's loss under ``name`` (call from ``before_backward``).

        The term is kept (detached) in :attr:`loss_terms` for logging until the next step.
        """
        if name in self.loss_terms:
            raise ValueError(f"loss term '{name}' was added twice in one step")
        self.loss = self.loss + value
        self.loss_terms[name] = value.detach()

    def ssl_views(self, images: Tensor) -> Tensor:
        """Two augmented views of raw uint8 ``images`` (for plugins with their own data)."""
        return self._model_input(self.augment(images.to(self.device)))

    # -- fast steps ---------------------------------------------------------------------
    finite_check_every: int = 50
    """Steps between host reads of the losses (each read waits for the device)."""

    def autocast(self) -> torch.autocast:
        """The step's autocast context (a no-op without ``autocast_dtype``)."""
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def _model_input(self, views: Tensor) -> Tensor:
        return views_channels_last(views) if self.channels_last else views

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLoss` for the first non-finite loss since the last check.

        The one host read of the training losses: every ``finite_check_every`` steps and at
        the end of every epoch.
        """
        unchecked, self._unchecked = self._unchecked, []
        if not unchecked:
            return
        finite = torch.stack([torch.isfinite(loss).all() for loss, _, _ in unchecked])
        if bool(finite.all()):
            return
        first = int((~finite).nonzero()[0])
        _, terms, (experience, epoch, step) = unchecked[first]
        values = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
        raise NonFiniteLoss(
            f"non-finite loss ({values}) on experience {experience}, epoch {epoch}, step "
            f"{step}: lower --lr or a strategy's weight",
            experience,
            epoch,
            step,
        )

    # -- data ----------------------------------------------------------------------------
    def make_train_dataloader(
        self, num_workers=0, shuffle=True, pin_memory=None, persistent_workers=False, **kwargs
    ) -> None:
        """Avalanche's loader; under torchrun, the shard of each rank.

        Under torchrun a :class:`~torch.utils.data.DistributedSampler` (reshuffled every
        epoch, seeded from the run's seed and the experience) gives each rank B / N images
        of every global step; Avalanche's own distributed sampling is seeded once and never
        reshuffled between epochs. A single process keeps Avalanche's loader, so its data
        order (and every number measured with it) is unchanged.

        A last batch of exactly one image (per rank) is never formed (BatchNorm refuses it
        in training, Barlow Twins' and VICReg's batch statistics divide by zero): when n
        images leave a remainder of 1 the loader drops its last batch (``drop_last``), one
        image per epoch, a different one each shuffled epoch; every other remainder is kept.
        An epoch is ``ceil(n / B)`` steps, minus one when ``n % B == 1``
        (:func:`lone_last_batch`).

        With :attr:`data_on_device`, the same sampler's batches are indexed from the images
        held on the device instead (:meth:`_resident_batches`).
        """
        ranks = distributed.world_size()
        shuffle = shuffle and not self.online  # online: the stream's arrival order
        kwargs.pop("drop_last", None)
        # Rows on this rank: the DistributedSampler pads the dataset to a multiple of N.
        rows = -(-len(self.adapted_dataset) // ranks)
        if rows < 2:
            raise ValueError(
                f"experience {self.experience.current_experience} has {len(self.adapted_dataset)} "
                f"training image(s) for {ranks} process(es): an SSL step needs at least 2 per "
                "process; use a larger experience (--max-images) or fewer processes"
            )
        drop_last = lone_last_batch(rows, self.train_mb_size)
        if ranks > 1:
            from torch.utils.data import DistributedSampler

            k = self.experience.current_experience
            self.sampler = DistributedSampler(
                self.adapted_dataset,
                num_replicas=ranks,
                rank=distributed.rank(),
                shuffle=shuffle,
                seed=experience_seed(self.train_seed or 0, k, "order"),
            )
        persistent = persistent_workers and num_workers > 0
        if self._resident_batches(shuffle, drop_last, persistent):
            pass  # batches indexed from the images held on the device
        elif ranks == 1:
            super().make_train_dataloader(
                num_workers=num_workers,
                shuffle=shuffle,
                pin_memory=pin_memory,
                persistent_workers=persistent_workers,
                drop_last=drop_last,
                **kwargs,
            )
        else:
            from avalanche.benchmarks.utils.data_loader import collate_from_data_or_kwargs
            from torch.utils.data import DataLoader

            args = self._obtain_common_dataloader_parameters(
                batch_size=self.train_mb_size,
                num_workers=num_workers,
                pin_memory=pin_memory,
                persistent_workers=persistent_workers,
                drop_last=drop_last,
            )
            collate_from_data_or_kwargs(self.adapted_dataset, args)
            self.dataloader = DataLoader(self.adapted_dataset, sampler=self.sampler, **args)
        self._repeat_batches()

    def _resident_batches(self, shuffle: bool, drop_last: bool, persistent: bool) -> bool:
        """Batches indexed from the experience's images on the device, if asked and possible.

        The same sampler as the loader's (:mod:`cl_ssl.data.device_resident`), so the same
        batches; anything else stays on the loader, the reason said once.
        """
        if not device_resident.use_resident(self.data_on_device, self.device):
            return False
        if len(set(getattr(self.experience, "task_labels", ()))) > 1:
            tensors = "the experience has several task labels (task-balanced batches)"
        else:
            data = self.adapted_dataset
            tensors = device_resident.resident_tensors(data, self.device_data_max_mb)
        if isinstance(tensors, str):
            device_resident.fall_back(tensors)
            return False
        from torch.utils.data import RandomSampler, SequentialSampler

        sampler = self.sampler
        if sampler is None:
            sampler = (RandomSampler if shuffle else SequentialSampler)(self.adapted_dataset)
        self.dataloader = device_resident.ResidentBatches(
            *tensors, sampler, self.train_mb_size, drop_last, self.device, persistent
        )
        return True

    def _repeat_batches(self) -> None:
        if self.online and self.updates_per_batch > 1:
            self.dataloader = RepeatedBatches(self.dataloader, self.updates_per_batch)

    def make_eval_dataloader(self, **kwargs) -> None:
        """Avalanche's loader over the whole split: evaluation is never sharded (rank 0).

        As in training, a last batch of exactly one image is dropped (the evaluation SSL
        loss of one image is NaN for Barlow Twins and VICReg); a split of one image keeps it.
        """
        from avalanche.benchmarks.utils.data_loader import (
            SingleDatasetDataLoader,
            collate_from_data_or_kwargs,
        )

        images = len(self.adapted_dataset)
        args = self._obtain_common_dataloader_parameters(
            batch_size=self.eval_mb_size,
            shuffle=False,
            drop_last=images > 1 and lone_last_batch(images, self.eval_mb_size),
            **{k: v for k, v in kwargs.items() if k not in ("ffcv_args", "shuffle", "drop_last")},
        )
        collate_from_data_or_kwargs(self.adapted_dataset, args)
        self.dataloader = SingleDatasetDataLoader(
            self.adapted_dataset, distributed_sampling=False, **args
        )

    # -- Avalanche overrides ------------------------------------------------------------
    def _check_distributed_training_compatibility(self) -> bool:
        # Avalanche flags plugins not written for its own distributed helpers; cl-ssl's
        # follow cl_ssl.distributed's contract (global batches, state synced per experience).
        return True

    def _before_training_exp(self, **kwargs) -> None:
        super()._before_training_exp(**kwargs)  # dataset, loader, optimizer, plugins
        self.steps_per_epoch = len(self.dataloader)
        # Inside this experience already (cl_ssl.interim): its saved state, randomness too.
        resumed = self.interim is not None and self.interim.resume(self)
        if self._pending_optimizer_state is not None:
            self.optimizer.load_state_dict(self._pending_optimizer_state)
            self._pending_optimizer_state = None
        if self.train_seed is not None and not resumed:
            k = self.experience.current_experience
            # Rank r > 0 draws its own views; rank 0's stream is the single-process one.
            rank = distributed.rank()
            stream = "train" if rank == 0 else f"train-rank{rank}"
            RNGManager.set_random_seeds(experience_seed(self.train_seed, k, stream))
        self._unchecked = []

    def _train_exp(self, experience, eval_streams=None, **kwargs) -> None:
        """Avalanche's epoch loop, from the clock's epoch: 0, or where a resumed run was."""
        for _ in range(self.clock.train_exp_epochs, self.train_epochs):
            self._before_training_epoch(**kwargs)
            if self._stop_training:  # early stopping
                self._stop_training = False
                break
            self.training_epoch(**kwargs)
            self._after_training_epoch(**kwargs)

    def _before_training_epoch(self, **kwargs) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(self.clock.train_exp_epochs)
        super()._before_training_epoch(**kwargs)
        if self.interim is not None:
            self.interim.begin_epoch(self)

    def _after_training_exp(self, **kwargs) -> None:
        # Buffer updates, importance passes, ...: the same draws and model on every rank.
        distributed.sync_random_state()
        distributed.average_buffers(self.model)
        super()._after_training_exp(**kwargs)

    def _before_forward(self, **kwargs) -> None:
        super()._before_forward(**kwargs)  # plugins see (and may change) raw images
        if self.is_training:
            self.mbatch[0] = self._model_input(self.augment(self.mbatch[0]))

    def _unpack_minibatch(self) -> None:
        super()._unpack_minibatch()
        images = self.mbatch[0]
        if self.is_training:
            return  # augmented after the plugins' before_forward
        seed = self.eval_seed + 100_003 * self.experience.current_experience
        torch.manual_seed(seed + self._eval_batch_index)
        self.mbatch[0] = self._model_input(self.augment(images))
        self._eval_batch_index += 1

    def train(self, experiences, eval_streams=None, **kwargs):
        """Avalanche's train; under torchrun every loss of it sees the global batch."""
        with distributed.global_batches():
            return super().train(experiences, eval_streams=eval_streams, **kwargs)

    def eval(self, experiences, **kwargs):
        """Avalanche's eval, run on a forked random state so training's stream is untouched."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return super().eval(experiences, **kwargs)

    def _before_eval_exp(self, **kwargs) -> None:
        self._eval_batch_index = 0
        super()._before_eval_exp(**kwargs)

    def _before_training_iteration(self, **kwargs) -> None:
        self.loss_terms = {}
        repeat = getattr(self.dataloader, "repeat", 0)
        self.fresh_batch = self.clock.train_exp_epochs == 0 and repeat == 0
        super()._before_training_iteration(**kwargs)

    def optimizer_step(self) -> None:
        """The scheduled rate for this step, the update, then the method's after-step hook."""
        step, epochs = self.clock.train_exp_iterations, self.train_epochs
        self.schedule.apply(self.optimizer, step, self.steps_per_epoch, epochs)
        super().optimizer_step()
        self.method.after_step(self.model, step + 1, self.steps_per_epoch * epochs)

    def forward(self) -> Any:
        with self.autocast():
            if self.is_training and self.ddp is not None:
                # The global batch's outputs, differentiable: every loss sees all ranks' rows.
                return distributed.gather_output(self.ddp(self.mb_x))
            return super().forward()

    def criterion(self) -> Tensor:
        # The views, not the labels: methods with a target network of their own need them.
        with self.autocast():
            loss = self._criterion(self.mb_output, self.mb_x)
        if self.is_training:
            self.loss_terms["ssl"] = loss.detach()
            self.images_trained += self.mb_output.features.shape[0]  # the global batch
            self.steps_trained += 1
        return loss

    def _before_backward(self, **kwargs) -> None:
        with self.autocast():  # the plugins' loss terms (a teacher's forward included)
            super()._before_backward(**kwargs)

    def backward(self) -> None:
        position = (
            self.experience.current_experience,
            self.clock.train_exp_epochs,
            self.clock.train_epoch_iterations,
        )
        self._unchecked.append((self.loss.detach(), self.loss_terms, position))
        super().backward()

    def _after_training_iteration(self, **kwargs) -> None:
        super()._after_training_iteration(**kwargs)
        if len(self._unchecked) >= self.finite_check_every:
            self.check_finite()
        if self.interim is not None:
            self.interim.after_step(self)

    def _after_training_epoch(self, **kwargs) -> None:
        self.check_finite()  # before any plugin uses the epoch's weights
        super()._after_training_epoch(**kwargs)
        if self.interim is not None:
            self.interim.after_epoch(self)
