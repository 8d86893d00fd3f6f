"""Reading one sample into tensors: files (or stored bytes) -> decoded, augmented, resized frames.

Per sample (all in the tf.data graph, parallel):

1. Read and decode the target and source frames (JPEG or PNG). A cheap structural check (magic
   bytes, JPEG end-of-image marker / PNG ``IEND`` chunk) runs first, so a truncated or corrupt file
   fails with an error naming it, or, with ``skip_corrupt_images=True``, the sample is dropped,
   logged and counted.
2. Training only: one augmentation draw per sample (`md2tf.data.augment`): a horizontal flip of every
   raw frame (before resizing) and of the GT depth, and a colour jitter applied identically to all
   frames; the jittered copies become ``aug`` and the clean ones feed the losses.
3. Resize to ``height x width`` with an antialiased Lanczos-3 filter (``tf.image.resize(...,
   "lanczos3", antialias=True)``: the same separable windowed-sinc filter, with its support widened by
   the downscale factor, as the reference's PIL ``LANCZOS``/``ANTIALIAS``), clipped to [0, 1].
   Measured on a textured 375x1242 image: mean |TF - PIL| = 0.29 grey levels (max 2.3) at 192x640.
   Remaining differences: PIL rounds to uint8 and runs the resize on the decoded uint8 image; md2tf
   keeps float32.
4. Intrinsics: the normalised K (fixed or from calibration) times (W, H) of the scale-0 image. A flip
   mirrors a calibrated principal point (``cx -> W - 1 - cx``, `md2tf.geometry.mirror_principal_point`):
   a real camera's is rarely centred, and left unmirrored it puts every warp of a flipped sample off
   by twice its offset. The paper's fixed KITTI K (``--intrinsics=fixed``) is centred by
   construction and kept as it is on a flip, as the reference implementation trained. The sample's
   camera index and whether it was flipped travel with it: a learned K (`md2tf.models.intrinsics`)
   mirrors its own principal point the same way.
   Stereo transform ``T[0, 3] = side_sign * flip_sign * baseline``. Known relative poses of the temporal sources
   (`md2tf.data.poses`, NaN when the dataset has none) become ``F T F`` in a flipped sample
   (`md2tf.geometry.mirror_x`): the flip mirrors the camera's x axis.

`read_samples` does this for a list of `Sample` s (every file-based dataset); a prepared TFDS
dataset (`md2tf.data.prepared`) decodes its stored frames and shares `finish_sample`. Randomness is
stateless: each sample gets a seed from ``tf.data.Dataset.random(seed,
rerandomize_each_iteration=True)`` zipped with the (seeded) shuffled sample list (`sample_seeds`),
so a reader built with the same seed yields the same samples.
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

from md2tf.config import DataConfig
from md2tf.data import augment
from md2tf.data.poses import unknown_poses
from md2tf.data.sample import Sample
from md2tf.geometry.camera import mirror_principal_point, scale_intrinsics
from md2tf.geometry.transforms import mirror_x

RESIZE_METHOD = "lanczos3"
_JPEG_TAIL = 32

# --- graph-side helpers ----------------------------------------------------------------------------


def image_looks_valid(contents: tf.Tensor, image_ext: str) -> tf.Tensor:
    """Cheap structural check of encoded image bytes (bool scalar).

    JPEG: starts with ``FF D8`` and has the end-of-image marker ``FF D9`` in its last 32 bytes; PNG: the 8-byte
    signature and an ``IEND`` chunk at the end. Catches empty, truncated and wrongly
    typed files; corruption inside the entropy-coded data is left to the decoder.
    """
    length = tf.strings.length(contents)
    if image_ext == ".png":
        head = tf.strings.substr(contents, 0, 8) == b"\x89PNG\r\n\x1a\n"
        # The last chunk is IEND: 4-byte length, b"IEND", 4-byte CRC.
        tail = tf.strings.substr(contents, tf.maximum(length - 8, 0), 4) == b"IEND"
        return tf.logical_and(length > 20, tf.logical_and(head, tail))
    head = tf.strings.substr(contents, 0, 2) == b"\xff\xd8"
    # The end-of-image marker FF D9, allowing a little padding after it (some writers add some).
    tail = tf.io.decode_raw(tf.strings.substr(contents, tf.maximum(length - _JPEG_TAIL, 0), _JPEG_TAIL),
                            tf.uint8)
    eoi = tf.reduce_any(tf.logical_and(tf.equal(tail[:-1], 0xFF), tf.equal(tail[1:], 0xD9)))
    return tf.logical_and(length > 4, tf.logical_and(head, eoi))


def read_image_bytes(path: tf.Tensor, image_ext: str, strict: bool = True,
                     ) -> tuple[tf.Tensor, tf.Tensor]:
    """Reads an encoded image and checks it with `image_looks_valid`.

    Args:
      path: string scalar.
      image_ext: ``".jpg"`` or ``".png"``.
      strict: fail (``InvalidArgumentError`` naming ``path``) on a corrupt or truncated file.

    Returns:
      ``(contents, valid)``: string scalar and bool scalar.
    """
    contents = tf.io.read_file(path)
    valid = image_looks_valid(contents, image_ext)
    if strict:
        check = tf.debugging.Assert(valid, ["corrupt or truncated image file:", path])
        with tf.control_dependencies([check]):
            contents = tf.identity(contents)
    return contents, valid


def decode_image(contents: tf.Tensor, image_ext: str) -> tf.Tensor:
    """Encoded bytes -> float32 ``[H, W, 3]`` in [0, 1]."""
    if image_ext == ".png":
        image = tf.io.decode_png(contents, channels=3)
    else:
        image = tf.io.decode_jpeg(contents, channels=3)
    return tf.image.convert_image_dtype(image, tf.float32)


def resize_image(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Antialiased Lanczos-3 resize of ``[..., h, w, 3]`` to ``[..., height, width, 3]``, in [0, 1]."""
    resized = tf.image.resize(image, [height, width], method=RESIZE_METHOD, antialias=True)
    return tf.clip_by_value(resized, 0.0, 1.0)




def decode_npy_float32(contents: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                       path: tf.Tensor) -> tf.Tensor:
    """Parses a little-endian float32 ``.npy`` (version 1, C order) of shape ``[height, width]``.

    Returns:
      float32 ``[height, width]``.
    """
    header_len = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, 8, 2), tf.uint16,
                                          little_endian=True)[0], tf.int32)
    header = tf.strings.substr(contents, 10, header_len)
    ok = tf.logical_and(
        tf.strings.substr(contents, 0, 6) == b"\x93NUMPY",
        tf.strings.regex_full_match(header, "(?s).*'descr': *'<f4'.*'fortran_order': *False.*"))
    values = tf.io.decode_raw(tf.strings.substr(contents, 10 + header_len, -1), tf.float32,
                              little_endian=True)
    size_ok = tf.equal(tf.size(values), height * width)
    check = tf.debugging.Assert(tf.logical_and(ok, size_ok), [
        "depth GT must be a float32 C-order .npy of the image size (H, W):", path,
        "image size", height, width])
    with tf.control_dependencies([check]):
        return tf.reshape(values, [height, width])


def velodyne_depth_map(contents: tf.Tensor, projection: tf.Tensor, height: tf.Tensor,
                       width: tf.Tensor) -> tf.Tensor:
    """Sparse GT depth from a KITTI lidar scan, as the reference's training-time GT.

    Points with velodyne x >= 0 are projected with ``projection``; the depth is the third homogeneous
    coordinate (rectified camera z, ``vel_depth=False``); pixel = ``round(u) - 1, round(v) - 1``
    (KITTI's MATLAB offset), kept inside the image; several points on one pixel keep the nearest
    (the reference's duplicate rule uses a non-injective index, see ``md2tf.evaluation.gt_depth``;
    it changes a handful of pixels, irrelevant for the indicative training metrics).

    Args:
      contents: bytes of a ``.bin`` scan (float32 x, y, z, reflectance per point).
      projection: ``[3, 4]`` lidar -> pixel projection (`md2tf.data.kitti_layout.velo_to_image_projection`).
      height, width: int32 scalars, the raw image size.

    Returns:
      float32 ``[height, width]`` metres, 0 where no point falls.
    """
    points = tf.reshape(tf.io.decode_raw(contents, tf.float32), [-1, 4])
    points = tf.boolean_mask(points, points[:, 0] >= 0.0)
    homogeneous = tf.concat([points[:, :3], tf.ones_like(points[:, :1])], axis=1)
    uvz = tf.matmul(homogeneous, projection, transpose_b=True)  # [N, 3]
    z = uvz[:, 2]
    safe_z = tf.where(tf.abs(z) > 1e-6, z, 1e-6)
    u = tf.cast(tf.round(uvz[:, 0] / safe_z), tf.int32) - 1
    v = tf.cast(tf.round(uvz[:, 1] / safe_z), tf.int32) - 1
    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height) & (z > 0.0)
    index = tf.stack([tf.boolean_mask(v, inside), tf.boolean_mask(u, inside)], axis=1)
    far = tf.float32.max
    depth = tf.tensor_scatter_nd_min(tf.fill([height, width], far), index, tf.boolean_mask(z, inside))
    return tf.where(depth == far, 0.0, depth)


# --- the per-sample map ---------------------------------------------------------------------------

class _SampleLoader:
    """Builds the per-sample map function (closure over the static configuration)."""

    def __init__(self, config: DataConfig, training: bool, skip_corrupt: bool) -> None:
        self.config = config
        self.training = training
        self.skip_corrupt = skip_corrupt

    def __call__(self, element: dict, seed: tf.Tensor) -> dict:
        cfg = self.config
        paths = tf.concat([element["target"][None], element["sources"]], axis=0)  # [N]
        n = 1 + cfg.num_sources
        params = (augment.draw_params(seed, cfg.flip_prob, cfg.color_aug_prob) if self.training
                  else augment.identity_params())
        frames, valid = [], tf.constant(True)
        raw_shape = None
        for i in range(n):
            contents, ok = read_image_bytes(paths[i], cfg.image_ext, strict=not self.skip_corrupt)
            valid = tf.logical_and(valid, ok)
            if self.skip_corrupt:
                image = tf.cond(ok, lambda c=contents: decode_image(c, cfg.image_ext),
                                lambda: tf.zeros([8, 8, 3], tf.float32))
            else:
                image = decode_image(contents, cfg.image_ext)
            if i == 0:
                raw_shape = tf.shape(image)
            image = augment.flip_horizontal(image, params.flip)  # raw image, before the resize
            frames.append(resize_image(image, cfg.height, cfg.width))
        clean = tf.stack(frames)  # [N, H, W, 3]

        gt_path = element["depth_gt"]

        def load_gt():
            depth = decode_npy_float32(tf.io.read_file(gt_path), raw_shape[0], raw_shape[1], gt_path)
            return augment.flip_horizontal(depth[..., None], params.flip)

        velo_path = element["velodyne"]

        def lidar_gt():
            depth = velodyne_depth_map(tf.io.read_file(velo_path), element["velo_projection"],
                                       raw_shape[0], raw_shape[1])
            return augment.flip_horizontal(depth[..., None], params.flip)

        def no_gt():
            return tf.zeros([cfg.gt_height, cfg.gt_width, 1], tf.float32)

        has_gt = tf.strings.length(gt_path) > 0
        has_velo = tf.strings.length(velo_path) > 0
        if self.skip_corrupt:  # a dropped sample has no valid image size
            has_gt, has_velo = tf.logical_and(has_gt, valid), tf.logical_and(has_velo, valid)
        depth_gt = tf.cond(has_gt, lambda: resize_depth(load_gt(), cfg),
                           lambda: tf.cond(has_velo, lambda: resize_depth(lidar_gt(), cfg), no_gt))
        out = finish_sample(cfg, clean, params, element["intrinsics"], element["side_sign"], depth_gt,
                            temporal_source_from_target=element["temporal_source_from_target"],
                            camera=element["camera"], temporal_distance=element["temporal_distance"])
        if self.skip_corrupt:
            out.update(valid=valid, paths=paths)  # for the filter; removed before batching
        return out


def resize_depth(depth: tf.Tensor, config: DataConfig) -> tf.Tensor:
    """GT depth ``[h, w, 1]`` -> ``[gt_height, gt_width, 1]`` by nearest neighbour (no mixing of depths)."""
    return tf.image.resize(depth, [config.gt_height, config.gt_width], method="nearest")


def finish_sample(config: DataConfig, clean: tf.Tensor, params: augment.AugmentParams,
                  intrinsics_normalized: tf.Tensor, side_sign: tf.Tensor,
                  depth_gt: tf.Tensor, temporal_source_from_target: tf.Tensor | None = None,
                  camera: tf.Tensor | int = 0,
                  temporal_distance: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """Colour jitter, intrinsics, stereo transform and known poses of one decoded (already flipped)
    sample.

    Args:
      config: data configuration.
      clean: float32 ``[N, H, W, 3]`` scale-0 frames (target first), flipped if ``params.flip``.
      params: the sample's augmentation draw.
      intrinsics_normalized: ``[3, 3]`` normalised K.
      side_sign: float32 scalar, -1 for a left target.
      depth_gt: ``[gt_height, gt_width, 1]`` (flipped with the images), zeros if unknown.
      temporal_source_from_target: float32 ``[T, 4, 4]`` known ``source_from_target`` of the
        temporal sources (of the unflipped images; NaN if unknown), or None (unknown).
      camera: int32 scalar, the sample's index in the dataset's cameras (`Dataset.cameras`).
      temporal_distance: float32 ``[T]`` metres travelled to each temporal source (a flip keeps
        them; NaN if unknown), or None (unknown).

    Returns:
      Dict of per-sample tensors consumed by `to_batch` after batching.
    """
    n = 1 + config.num_sources
    num_temporal = len(config.temporal_offsets)
    if temporal_source_from_target is None:
        temporal_source_from_target = tf.constant(unknown_poses(num_temporal))
    poses = tf.reshape(tf.cast(temporal_source_from_target, tf.float32), [num_temporal, 4, 4])
    poses = tf.cond(params.flip, lambda: mirror_x(poses), lambda: poses)
    if temporal_distance is None:
        temporal_distance = tf.fill([num_temporal], float("nan"))
    distance = tf.reshape(tf.cast(temporal_distance, tf.float32), [num_temporal])
    clean.set_shape([n, config.height, config.width, 3])
    depth_gt.set_shape([config.gt_height, config.gt_width, 1])
    if config.use_stereo:
        flip_sign = tf.where(params.flip, -1.0, 1.0)
        tx = side_sign * flip_sign * config.stereo_baseline
        stereo = tf.tensor_scatter_nd_update(tf.eye(4), [[0, 3]], tx[None])
    else:
        stereo = tf.eye(4)
    intrinsics = scale_intrinsics(intrinsics_normalized, config.height, config.width)
    if config.intrinsics != "fixed":  # step 4 of the module docstring
        intrinsics = tf.cond(params.flip, lambda: mirror_principal_point(intrinsics, config.width),
                             lambda: intrinsics)
    return {
        "clean": clean,
        "aug": augment.color_jitter(clean, params),
        "intrinsics": intrinsics,
        "stereo": stereo,
        "depth_gt": depth_gt,
        "poses": poses,
        "distance": distance,
        "camera": tf.cast(camera, tf.int32),
        "flipped": tf.convert_to_tensor(params.flip, tf.bool),
    }


def samples_to_dataset(samples: list[Sample], num_temporal: int,
                       cameras: list[int] | None = None) -> tf.data.Dataset:
    """A dataset of the samples' paths and camera data (one dict per sample; nothing decoded).

    Args:
      samples: the listed samples.
      num_temporal: T, the number of temporal sources (NaN poses ``[T, 4, 4]`` for samples listed
        without poses).
      cameras: each sample's camera index (`Dataset.cameras`); None: all 0.
    """
    if not samples:
        raise ValueError("no samples to read")
    poses = np.stack([unknown_poses(num_temporal) if s.temporal_source_from_target is None
                      else s.temporal_source_from_target for s in samples]).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices({
        "target": np.array([s.target for s in samples]),
        "sources": np.array([list(s.sources) for s in samples]).reshape(len(samples), -1),
        "intrinsics": np.stack([s.intrinsics for s in samples]).astype(np.float32),
        "side_sign": np.array([s.side_sign for s in samples], np.float32),
        "depth_gt": np.array([s.depth_gt for s in samples]),
        "velodyne": np.array([s.velodyne for s in samples]),
        "velo_projection": np.stack([s.velo_projection for s in samples]).astype(np.float32),
        "temporal_source_from_target": poses.reshape(len(samples), num_temporal, 4, 4),
        "temporal_distance": np.stack([np.full(num_temporal, np.nan) if s.temporal_distance is None
                                       else s.temporal_distance for s in samples]
                                      ).astype(np.float32).reshape(len(samples), num_temporal),
        "camera": np.zeros(len(samples), np.int32) if cameras is None else np.asarray(cameras, np.int32),
    })


def sample_seeds(seed: int, pipeline_id: int = 0) -> tf.data.Dataset:
    """Per-sample stateless augmentation seeds (int64 ``[2]``), new ones every epoch."""
    return tf.data.Dataset.random(seed=seed * 1000003 + pipeline_id,
                                  rerandomize_each_iteration=True).batch(2)


def parallel_calls(config: DataConfig) -> int:
    """``config.num_parallel_calls``, with a negative value meaning ``tf.data.AUTOTUNE``."""
    return tf.data.AUTOTUNE if config.num_parallel_calls < 0 else config.num_parallel_calls


def read_samples(samples: list[Sample], config: DataConfig, *, training: bool,
                 input_context: tf.distribute.InputContext | None = None, seed: int = 0,
                 deterministic: bool = False, skip_corrupt_images: bool = False,
                 corrupt_counter: tf.Variable | None = None,
                 cameras: list[int] | None = None) -> tf.data.Dataset:
    """Listed samples -> unbatched `finish_sample` dicts (see `md2tf.data.datasets.base.Dataset.read`).

    Args:
      samples: the listed samples of one subset.
      config: data configuration.
      training: shuffle (seeded, reshuffled every epoch) and augment; False: file order, no
        augmentation.
      input_context: shards the sample list by ``input_pipeline_id`` when there are several input
        pipelines.
      seed: shuffle / augmentation seed.
      deterministic: keep the element order of the parallel map.
      skip_corrupt_images: drop (log to stderr and count) samples with a corrupt or truncated image
        instead of failing with an error naming the file.
      corrupt_counter: with ``skip_corrupt_images``, an int64 scalar ``tf.Variable`` incremented
        for every dropped sample (optional).
      cameras: each sample's camera index (`Dataset.cameras`); None: all 0.
    """
    ds = samples_to_dataset(samples, len(config.temporal_offsets), cameras)
    pipeline_id = 0
    if input_context is not None and input_context.num_input_pipelines > 1:
        pipeline_id = input_context.input_pipeline_id
        ds = ds.shard(input_context.num_input_pipelines, pipeline_id)
    if training:
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, sample_seeds(seed, pipeline_id))
    loader = _SampleLoader(config, training, skip_corrupt_images)
    ds = ds.map(loader, num_parallel_calls=parallel_calls(config), deterministic=deterministic)
    if skip_corrupt_images:
        ds = ds.filter(lambda e: _keep_or_report(e, corrupt_counter))
        ds = ds.map(lambda e: {k: v for k, v in e.items() if k not in ("paths", "valid")})
    return ds


class _StoredLoader:
    """The per-example map of `read_stored`: decode the chosen frames, augment, finish."""

    def __init__(self, config: DataConfig, training: bool, frame_indices: list[int]) -> None:
        self.config = config
        self.training = training
        self.frame_indices = frame_indices
        # Stored poses follow the stored temporal frames (stored frame 1 + i has pose i).
        self.pose_indices = [i - 1 for i in frame_indices[1:1 + len(config.temporal_offsets)]]

    def __call__(self, example: dict, seed: tf.Tensor) -> dict:
        cfg = self.config
        params = (augment.draw_params(seed, cfg.flip_prob, cfg.color_aug_prob) if self.training
                  else augment.identity_params())
        frames = [tf.io.decode_image(example["frames"][i], channels=3, expand_animations=False)
                  for i in self.frame_indices]
        clean = augment.flip_horizontal(tf.image.convert_image_dtype(tf.stack(frames), tf.float32),
                                        params.flip)
        raw = example["depth_gt"]

        def gt():
            return resize_depth(augment.flip_horizontal(raw[..., None], params.flip), cfg)

        depth_gt = tf.cond(tf.size(raw) > 0, gt,
                           lambda: tf.zeros([cfg.gt_height, cfg.gt_width, 1], tf.float32))
        poses = distance = None
        if "temporal_source_from_target" in example and self.pose_indices:
            poses = tf.gather(example["temporal_source_from_target"], self.pose_indices)
            distance = tf.norm(poses[:, :3, 3], axis=-1)  # known poses give distances (NaN: none)
        return finish_sample(cfg, clean, params, example["intrinsics"], example["side_sign"], depth_gt,
                             temporal_source_from_target=poses, temporal_distance=distance)


def read_stored(examples: tf.data.Dataset, config: DataConfig, frame_indices: list[int], *,
                training: bool, seed: int = 0, pipeline_id: int = 0,
                deterministic: bool = False) -> tf.data.Dataset:
    """Stored examples (frames already resized, still encoded) -> unbatched `finish_sample` dicts.

    Args:
      examples: dicts with ``frames`` (string ``[F]``, encoded images of the model size),
        ``depth_gt`` (float32 ``[h, w]``, ``[0, 0]`` if unknown), ``intrinsics`` (``[3, 3]``
        normalised), ``side_sign`` and optionally ``temporal_source_from_target`` (``[T', 4, 4]``).
      config: data configuration.
      frame_indices: the stored frames making target + sources, in the config's order.
      training: augment (a flip after the resize: with the symmetric Lanczos kernel on pixel
        centres, flip-then-resize and resize-then-flip agree to float precision).
      seed, pipeline_id: augmentation seeds (`sample_seeds`).
      deterministic: keep the element order of the parallel map.
    """
    loader = _StoredLoader(config, training, frame_indices)
    return tf.data.Dataset.zip(examples, sample_seeds(seed, pipeline_id)).map(
        loader, num_parallel_calls=parallel_calls(config), deterministic=deterministic)


def _keep_or_report(element: dict, counter: tf.Variable | None) -> tf.Tensor:
    """Filter predicate: keeps valid samples; logs (and counts) dropped ones."""

    def report():
        ops = [tf.print("md2tf.data: skipping a sample with a corrupt image among", element["paths"],
                        output_stream=sys.stderr)]
        if counter is not None:
            ops.append(counter.assign_add(1))
        with tf.control_dependencies(ops):
            return tf.constant(False)

    return tf.cond(element["valid"], lambda: tf.constant(True), report)
