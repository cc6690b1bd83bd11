from cl_ssl.registry import streams
from cl_ssl.streams import StreamOptions


def test_five_periods_of_disjoint_digits():
    stream = streams.get("digits-periods")(StreamOptions())
    assert stream.num_experiences == 5 and stream.image_size == 16 and stream.is_labeled
    seen = set()
    for exp in stream.experiences:
        labels = set(exp.train.labels.tolist()) | set(exp.test.labels.tolist())
        assert len(labels) == 2 and not labels & seen
        seen |= labels
        total = len(exp.train) + len(exp.test)
        assert len(exp.test) == round(total * 0.1)
