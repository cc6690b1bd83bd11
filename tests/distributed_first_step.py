"""Run under torchrun by tests/test_distributed.py: record what each rank trained.

``python -m torch.distributed.run --nproc_per_node 2 tests/distributed_first_step.py OUT``
trains through :class:`~cl_ssl.strategy_run.StrategyRun`:

- ``naive`` (first step of experience 0) and ``lwf-ssl`` (first step of experience 1, where
  the teacher exists): per rank, the model's weights when the step began, this rank's
  views, the step's loss and the gradients after DDP's all-reduce, in
  ``OUT/<strategy>-rank<r>.pt``;
- every stateful strategy over the whole stream: per rank, the training state (model,
  optimizer, method, plugins: teacher, importances, buffer, predictors) in
  ``OUT/state-<strategy>-rank<r>.pt``, to be compared across ranks.

``--fail-on-rank-1 BENCH-ARGS`` runs ``clssl bench`` whose rank 1 alone fails.
``--kill-rank-1-at N BENCH-ARGS`` runs ``clssl bench`` whose rank 1 SIGKILLs itself before
its N-th backward pass, on torchrun's first attempt only (``--max-restarts`` restarts it;
the restart prints where it went on from).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from avalanche.core import SupervisedPlugin

from cl_ssl import distributed
from cl_ssl.config import BenchConfig, EvalConfig, StreamOptions, TrainConfig
from cl_ssl.registry import streams
from cl_ssl.state import capture
from cl_ssl.strategy_run import StrategyRun

CASES = {"naive": 0, "lwf-ssl": 1}  # strategy -> the experience whose first step is kept
STATEFUL = ("ewc", "replay", "cassle", "pfr", "pnr")


def config(strategy: str) -> BenchConfig:
    return BenchConfig(
        stream="split",  # two experiences: lwf-ssl's first step of the second has a teacher
        strategies=strategy,
        train=TrainConfig(batch_size=32, epochs=1, device="cpu", seed=0, precision="fp32"),
        evaluation=EvalConfig(knn_k=(5,), linear_probe=False, kmeans=False, checkpoints=False),
        stream_options=StreamOptions(image_size=8, max_images=40, dataset="digits", tasks=2),
        progress=False,
    )


class Stop(Exception):
    """The recorded step is done: stop training (every rank stops at the same step)."""


class FirstStep(SupervisedPlugin):
    def __init__(self, experience: int, path: Path) -> None:
        super().__init__()
        self.experience, self.path, self.start = experience, path, None

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.start = {k: v.clone() for k, v in strategy.model.state_dict().items()}

    def after_backward(self, strategy, **kwargs) -> None:
        if strategy.experience.current_experience != self.experience:
            return
        record = {
            "start": self.start,
            "views": strategy.mb_x.detach().clone(),
            "loss": strategy.loss.detach().clone(),
            "grads": {n: p.grad.clone() for n, p in strategy.model.named_parameters()},
            "world_size": distributed.world_size(),
        }
        torch.save(record, self.path)
        raise Stop


def main(out: Path) -> None:
    distributed.setup("cpu")
    torch.set_num_threads(1)
    for strategy, experience in CASES.items():
        bench = config(strategy)
        stream = streams.get(bench.stream)(bench.stream_options)
        run = StrategyRun(stream, (strategy,), bench, out / strategy)
        path = out / f"{strategy}-rank{distributed.rank()}.pt"
        run.strategy.plugins.append(FirstStep(experience, path))
        try:
            for exp in stream.benchmark.train_stream:
                run.strategy.train(exp, eval_streams=[])
        except Stop:
            pass
    for strategy in STATEFUL:
        bench = config(strategy)
        stream = streams.get(bench.stream)(bench.stream_options)
        run = StrategyRun(stream, (strategy,), bench, out / strategy)
        for exp in stream.benchmark.train_stream:
            run.strategy.train(exp, eval_streams=[])
        state = capture(run.strategy, run.plugins)
        keep = {k: state[k] for k in ("model", "optimizer", "method", "plugins", "template")}
        torch.save(keep, out / f"state-{strategy}-rank{distributed.rank()}.pt")
    distributed.teardown()


def fail_on_rank_1(args: list[str]) -> None:
    """``clssl bench ARGS`` whose rank 1 alone raises in its first training step."""
    from cl_ssl.cli import main as cli_main
    from cl_ssl.template import SSLTemplate

    def broken(self, *a, **k):
        raise RuntimeError(f"rank {distributed.rank()} broke")

    if int(os.environ["RANK"]) == 1:
        SSLTemplate.training_epoch = broken
    sys.argv = ["clssl", "bench", *args]
    cli_main()


def kill_rank_1_at(step: int, args: list[str]) -> None:
    """``clssl bench ARGS`` whose rank 1 dies (SIGKILL) at its ``step``-th backward, once."""
    import signal

    from cl_ssl.cli import main as cli_main
    from cl_ssl.template import SSLTemplate

    backward, done = SSLTemplate.backward, [0]

    def killing(self):
        done[0] += 1
        if done[0] == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return backward(self)

    if int(os.environ["RANK"]) == 1 and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0":
        SSLTemplate.backward = killing
    restore = StrategyRun._restore_within

    def told(self, strategy, state):  # the restarted attempt says where it went on from
        at = restore(self, strategy, state)
        if distributed.is_main():
            print(f"resumed inside experience {at.experience} at epoch {at.epoch}, step {at.step}")
        return at

    StrategyRun._restore_within = told
    sys.argv = ["clssl", "bench", *args]
    cli_main()


if __name__ == "__main__":
    if sys.argv[1] == "--fail-on-rank-1":
        fail_on_rank_1(sys.argv[2:])
    elif sys.argv[1] == "--kill-rank-1-at":
        kill_rank_1_at(int(sys.argv[2]), sys.argv[3:])
    else:
        main(Path(sys.argv[1]))
