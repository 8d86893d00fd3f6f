"""TensorFlow Datasets builders: md2tf's one prepared data format.

`md2tf.tfds.builders` defines one generic ``tfds.core.GeneratorBasedBuilder`` over the dataset
registry of `md2tf.data.datasets` and registers it with TFDS under ``md2tf_<registry name>``:
``md2tf_kitti`` and ``md2tf_kitti_odom`` (manual downloads), ``md2tf_synthetic`` (the built-in
world, rendered by the builder) and ``md2tf_folder`` (your frames + ``intrinsics.json``, e.g. decoded
from a video). Training reads a prepared dataset with ``--dataset=tfds:<name>/<config>`` through
`md2tf.data.prepared` (which needs only the prepared files, not this package).

This package sits above ``data`` and ``evaluation``: the Eigen test split stores the ground truth the
evaluator computes (`md2tf.evaluation.gt_depth`). It is imported only to prepare data
(``scripts/prepare_tfds.py``) or to ``tfds.load`` by name.
"""
