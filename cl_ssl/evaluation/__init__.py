"""Representation metrics on frozen features and the continual-learning figures of R matrices."""
