"""Run ``clssl`` commands that SIGKILL themselves at a chosen moment (test_fault_injection.py).

``python tests/fault_injection.py`` imports cl-ssl and its libraries once, runs nothing,
then reads one JSON request per line from stdin, ``[event, n, counts_json, log, args]``,
forks, and in the child runs ``clssl ARGS`` killing itself with SIGKILL the n-th time
``event`` happens (n = 0: never; the count of every event is then written to
``counts_json``, so a test draws moments that exist). It answers each request with one
JSON line, ``{"signal": s, "code": c}``. Forking a process that has imported torch but
never computed is safe (no thread pool started yet) and saves the imports per moment.

Events:

- ``train``: a training step, before its backward pass;
- ``eval``: a feature extraction of an evaluation pass;
- ``checkpoint``: a checkpoint half written (the first half of its bytes on disk);
- ``rename``: any output file fully written, just before it is renamed into place
  (checkpoints, metrics, results, summaries, plots).
"""

from __future__ import annotations

import json
import os
import signal
import sys


def run(event: str, nth: int, counts_path: str, args: list[str]) -> None:
    """``clssl ARGS`` with ``event`` armed (in the forked child)."""
    counts = {"train": 0, "eval": 0, "checkpoint": 0, "rename": 0}

    def happened(name: str) -> None:
        counts[name] += 1
        if name == event and counts[name] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    import cl_ssl.checkpoint as checkpoint
    import cl_ssl.evaluation.metrics as metrics
    from cl_ssl.atomic import atomic_write
    from cl_ssl.cli import app
    from cl_ssl.template import SSLTemplate

    backward = SSLTemplate.backward

    def killing_backward(self):
        happened("train")
        return backward(self)

    extract = metrics.extract_features

    def killing_extract(*a, **k):
        happened("eval")
        return extract(*a, **k)

    def killing_write_bytes(path, data, durable=False):
        data = bytes(data)
        with atomic_write(path, binary=True, durable=durable) as file:
            file.write(data[: len(data) // 2])
            file.flush()
            happened("checkpoint")
            file.write(data[len(data) // 2 :])

    replace = os.replace

    def killing_replace(src, dst, *a, **k):
        if os.fspath(src).endswith(".partial"):
            happened("rename")
        return replace(src, dst, *a, **k)

    SSLTemplate.backward = killing_backward
    metrics.extract_features = killing_extract
    checkpoint.write_bytes = killing_write_bytes
    os.replace = killing_replace
    try:
        app(args, prog_name="clssl")
    finally:
        if nth == 0:
            with open(counts_path, "w") as file:
                json.dump(counts, file)


def serve() -> None:
    """Answer each request of stdin with the exit of one forked ``clssl`` run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    import cl_ssl.bench  # noqa: F401  (torch, Avalanche, Lightly and every registry)
    import cl_ssl.cli  # noqa: F401
    import cl_ssl.reporting.plots  # noqa: F401

    for line in sys.stdin:
        event, nth, counts_path, log, args = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            with open(log, "w") as out:
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                try:
                    run(event, nth, counts_path, args)
                    code = 0
                except SystemExit as done:
                    code = done.code if isinstance(done.code, int) else 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        signalled = os.WIFSIGNALED(status)
        answer = {
            "signal": os.WTERMSIG(status) if signalled else 0,
            "code": None if signalled else os.WEXITSTATUS(status),
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
