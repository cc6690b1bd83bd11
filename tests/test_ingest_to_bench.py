"""From videos to a comparison: encode digits into mp4s, ingest, build twitch-periods, train."""

from fractions import Fraction

import av
import numpy as np
import pandas as pd
import torch
from cl_ssl.benchmarks.twitch_periods import twitch_periods
from sklearn.datasets import load_digits

from cl_ssl.bench import run_bench
from cl_ssl.config import BenchConfig, EvalConfig, TrainConfig
from cl_ssl.ingest import IngestConfig, ingest
from cl_ssl.streams import StreamOptions


def digits_video(path, labels, seconds, fps=8):
    """A 32x32 video showing digits of ``labels``, a new digit every frame."""
    digits = load_digits()
    pool = digits.images[np.isin(digits.target, labels)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 4_000_000
        for index in range(seconds * fps):
            small = (pool[index % len(pool)] * 255 / 16).astype(np.uint8)
            image = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)
            frame = av.VideoFrame.from_ndarray(np.stack([image] * 3, axis=-1), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_vods_become_a_trainable_stream(tmp_path):
    rows = []
    for n, (labels, created) in enumerate(
        [([0, 1], "2021-01-05T10:00:00Z"), ([0, 1], "2021-02-05T10:00:00Z"),
         ([2, 3], "2021-08-05T10:00:00Z"), ([2, 3], "2021-09-05T10:00:00Z")]
    ):  # fmt: skip
        digits_video(tmp_path / f"v{n}.mp4", labels, seconds=10)
        rows.append({"vod_id": f"v{n}", "created_at": created, "source": f"v{n}.mp4",
                     "category": "low" if labels[0] == 0 else "high"})  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "vods.csv", index=False)

    report = ingest(IngestConfig(tmp_path / "vods.csv", tmp_path / "out", fps=4), progress=False)
    assert sorted(report.done) == ["v0", "v1", "v2", "v3"] and not report.failed
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv")
    assert len(manifest) == report.frames == 4 * 40  # 10 s at 4 fps per VOD
    first = pd.to_datetime(manifest[manifest.vod_id == "v0"].timestamp, format="ISO8601")
    assert (first.diff().dropna() == pd.Timedelta(seconds=0.25)).all()

    options = StreamOptions(
        manifest=tmp_path / "out" / "manifest.csv", period_length="6M", image_size=16
    )
    stream = twitch_periods(options)
    assert [len(e.train) + len(e.test) for e in stream.experiences] == [80, 80]
    for experience in stream.experiences:  # split by VOD: one VOD per side
        assert len(experience.test) == 40

    result = run_bench(
        BenchConfig(
            stream="twitch-periods",
            strategies="naive,lwf-ssl",
            train=TrainConfig(epochs=1, batch_size=40, device="cpu"),
            evaluation=EvalConfig(knn_k=(5,), linear_probe=False, kmeans=False, checkpoints=False),
            stream_options=options,
            out=tmp_path / "runs",
            run_name="vods",
            progress=False,
        )
    )
    naive, lwf = result.strategies
    assert torch.isfinite(torch.tensor(lwf.loss_matrix.to_numpy())).all()
    assert naive.loss_matrix.iloc[0].equals(lwf.loss_matrix.iloc[0])
    assert {"all_knn5", "exp_knn5"} <= set(lwf.metric_names)  # categories label the frames
