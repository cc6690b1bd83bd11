"""The strategy kit: the maths and lifecycles continual strategies share, and nothing else uses.

- :mod:`~cl_ssl.kit.teacher`: the frozen teacher (LwF-SSL, CaSSLe, PFR, PNR);
- :mod:`~cl_ssl.kit.trained_module`: a strategy's own trained module (CaSSLe's predictor,
  PFR's projector) with its optimizer groups and checkpoint state;
- :mod:`~cl_ssl.kit.fisher`: the SSL Fisher and EWC penalty;
- :mod:`~cl_ssl.kit.buffers` and :mod:`~cl_ssl.kit.streaming_replay`: online replay buffers;
- :mod:`~cl_ssl.kit.losses`: distillation and regularization losses (relational, CaSSLe's
  predictor, PFR, PNR).

The arrows point one way: ``strategies/`` import the kit, the kit imports the core
(``cl_ssl.template``, ``cl_ssl.models``, ``cl_ssl.methods``), and nothing in the core imports
the kit (``tests/test_layering.py`` checks it). A method's own distillation form lives with the
methods (:mod:`cl_ssl.methods.distillation`).
"""
