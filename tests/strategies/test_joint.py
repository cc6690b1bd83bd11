from cl_ssl.strategies.joint import JointPlugin


class SeenSpy(JointPlugin):
    """Counts the images each experience trains on, per epoch."""

    def __init__(self):
        super().__init__()
        self.labels_per_exp: list[set[int]] = []
        self.images_per_exp: list[int] = []

    def before_training_exp(self, strategy, *args, **kwargs):
        self.labels_per_exp.append(set())
        self.images_per_exp.append(0)

    def after_forward(self, strategy, *args, **kwargs):
        self.labels_per_exp[-1].update(int(y) for y in strategy.mb_y)
        self.images_per_exp[-1] += strategy.mb_x.shape[0]


def test_joint_trains_on_the_union_of_experiences_so_far(tiny_stream, make_template):
    spy = SeenSpy()
    strategy = make_template(tiny_stream, [spy])
    train = tiny_stream.benchmark.train_stream
    for experience in train[:3]:
        strategy.train(experience, eval_streams=[])
    sizes = [len(e.dataset) for e in train[:3]]
    assert spy.images_per_exp == [sizes[0], sum(sizes[:2]), sum(sizes)]
    # Period k of digits-periods is digits {2k, 2k+1}.
    assert spy.labels_per_exp == [set(range(2)), set(range(4)), set(range(6))]
