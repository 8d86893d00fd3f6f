"""The ground plane under the camera, fitted to a depth map, and the scale a known camera height gives.

A monocular network predicts depth up to one unknown factor. A camera mounted at a known height above
a flat road fixes that factor (Xue et al., "Toward Hierarchical Self-Supervised Monocular Absolute
Depth Estimation for Autonomous Driving Applications", IROS 2020: the dense geometrical constraint,
DGC): back-project the road pixels with the predicted depth, fit a plane, and the camera centre's
distance to it is the camera height in the prediction's units, so ``scale = known height / fitted
height`` turns the prediction into metres.

Conventions are `md2tf.geometry`'s: camera frame x right, y down, z forward; ``K`` in pixels of the
depth map, integer pixel centres. The ground is the plane ``n . X = d`` with unit normal ``n`` pointing
down (``n_y > 0``) and ``d > 0`` the camera height; it is stored as ``m = n / d`` (``m . X = 1``). For a
pixel with ray ``r = K^-1 [u, v, 1]`` (z = 1) and depth ``z``, ``m . X = z / z_plane`` where
``z_plane = 1 / (m . r)`` is the depth the plane predicts there. So ``|m . X - 1|`` is the pixel's
relative depth deviation from the plane: independent of the depth's scale, and a relative depth error
``e`` moves near and far ground points alike by ``e d`` along the normal. RANSAC counts inliers by it
(`INLIER_TOLERANCE`); the refinement is linear least squares on ``m . X - 1``: first reweighted with
Cauchy weights of that width (a smooth objective that does not wander under per-pixel noise as
the hard inlier band does), then on the band's inliers.

Only rays at least `HORIZON_MARGIN_DEG` below the optical axis are candidates: with the camera roughly
level the ground is there, and the far road just under the horizon, whose predicted depth is the least
reliable, is left out. This module is NumPy only (host-side, for evaluation and prediction): no
TensorFlow, no config.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Candidate ground pixels: rays at least this far below the optical axis, in degrees. 3 degrees
#: keeps ground up to ~31 m from a camera 1.65 m high, and leaves room for a camera pitched up by a
#: degree or two (a level horizon is at the principal point's row).
HORIZON_MARGIN_DEG = 3.0
#: Largest angle, in degrees, between an accepted plane's normal and the camera's down axis (0, 1, 0):
#: room for a car-mounted camera's pitch and roll (KITTI's: 1-2 degrees) and gentle road slopes;
#: walls (normal along x or z) are refused. Not wider: a model whose predicted road is distorted
#: (depth growing too slowly up the image) gets a plane tipped to the limit, further from the
#: camera. Measured on the synthetic world's test drive with an M model trained 4 epochs (median-
#: scaled abs_rel 0.318): at 20 degrees the scale was a third of the GT ratio (abs_rel 0.626), at
#: 5 degrees within 2 % on the images it trusts (abs_rel 0.299); an MS model: 0.328 and 0.315
#: (median scaling 0.303).
MAX_TILT_DEG = 5.0
#: A pixel is a plane inlier when its depth is within this fraction of the depth the plane predicts.
INLIER_TOLERANCE = 0.05
#: RANSAC: number of 3-point hypotheses, and the most candidate pixels they are scored on (a seeded
#: random subset; the refinement and the reported inliers use every candidate pixel).
RANSAC_ITERATIONS = 500
RANSAC_POINTS = 4000
#: Refinement after RANSAC: iteratively reweighted least squares with Cauchy weights
#: ``1 / (1 + (r / INLIER_TOLERANCE)^2)`` of the relative residual r, then least-squares rounds on the
#: inliers (re-select, re-fit).
CAUCHY_ITERATIONS = 10
REFINE_ROUNDS = 3
#: A fit is `GroundFit.reliable` when the plane has at least this many inlier pixels ...
MIN_INLIERS = 100
#: ... and they are at least this fraction of the candidate pixels (enough ground visible: a car or
#: a wall right in front of the camera leaves little of it).
MIN_INLIER_FRACTION = 0.25


class GroundFit(NamedTuple):
    """A ground plane fitted to a depth map (module docstring).

    Attributes:
      height: distance of the camera centre to the plane, in the depth's units (NaN without a plane).
      normal: float64 ``[3]`` unit normal in the camera frame, pointing down, away from the camera
        (NaN without a plane).
      inlier_fraction: inlier pixels / candidate pixels (0 without candidates).
      num_inliers: pixels within `INLIER_TOLERANCE` of the plane.
      num_candidates: valid pixels at least `HORIZON_MARGIN_DEG` below the optical axis.
      reliable: enough ground was seen: at least `MIN_INLIERS` inliers and `MIN_INLIER_FRACTION` of
        the candidates.
    """

    height: float
    normal: np.ndarray
    inlier_fraction: float
    num_inliers: int
    num_candidates: int
    reliable: bool


def intrinsics_in_pixels(K_normalized: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised intrinsics to pixels of a ``height x width`` map: row 0 times W, row 1 times H.

    The NumPy twin of `md2tf.geometry.camera.scale_intrinsics` (the project's one convention:
    ``fx = fx_n W``, ``cx = cx_n W``, ``fy = fy_n H``, ``cy = cy_n H``).

    Args:
      K_normalized: ``[3, 3]`` normalised intrinsics.
      height, width: map size in pixels.

    Returns:
      float64 ``[3, 3]`` intrinsics in pixels.

    Raises:
      ValueError: if ``K_normalized`` is not ``[3, 3]``.
    """
    K = np.array(K_normalized, np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K_normalized must have shape [3, 3], got {list(K.shape)}")
    K[0] *= width
    K[1] *= height
    return K


def _candidates(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``[N, 3]`` camera-frame points of the valid pixels below `HORIZON_MARGIN_DEG`."""
    h, w = depth.shape
    fx, fy, cx, cy, skew = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    first_row = max(0, int(np.ceil(cy + fy * np.tan(np.deg2rad(HORIZON_MARGIN_DEG)))))
    if first_row >= h:
        return np.zeros((0, 3))
    v, u = np.mgrid[first_row:h, 0:w].astype(np.float64)
    z = depth[first_row:].astype(np.float64)
    valid = np.isfinite(z) & (z > 0)
    v, u, z = v[valid], u[valid], z[valid]
    y = (v - cy) / fy
    x = (u - cx - skew * y) / fx
    return np.stack([x * z, y * z, z], axis=-1)


def _plane_hypotheses(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[M, 3]`` planes ``m`` through random point triples that face the camera's down axis."""
    triples = points[rng.integers(0, len(points), (RANSAC_ITERATIONS, 3))]  # [I, 3, 3]
    normal = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    length = np.linalg.norm(normal, axis=-1)
    ok = length > 0  # a repeated or collinear triple spans no plane
    normal = normal[ok] / length[ok, None]
    normal *= np.where(normal[:, 1:2] < 0, -1.0, 1.0)  # point down (y > 0)
    distance = np.einsum("ij,ij->i", normal, triples[ok, 0])
    keep = (normal[:, 1] >= np.cos(np.deg2rad(MAX_TILT_DEG))) & (distance > 0)  # camera above it
    return normal[keep] / distance[keep, None]


def _faces_down(m: np.ndarray) -> bool:
    """Whether plane ``m`` lies below the camera within `MAX_TILT_DEG` of the down axis."""
    length = np.linalg.norm(m)
    return bool(np.isfinite(length) and length > 0
                and m[1] >= length * np.cos(np.deg2rad(MAX_TILT_DEG)))


def _solve(points: np.ndarray, weights: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Weighted least squares ``argmin sum w (m . X - 1)^2``; the old ``m`` if the new plane is
    degenerate or leaves the tilt cone (e.g. a wall filling the view pulls it up)."""
    root = np.sqrt(weights)
    refined, *_ = np.linalg.lstsq(points * root[:, None], root, rcond=None)
    return refined if _faces_down(refined) else m


def _refine(points: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`CAUCHY_ITERATIONS` reweighted fits, then `REFINE_ROUNDS` fits on the inliers; (m, inliers)."""
    for _ in range(CAUCHY_ITERATIONS):
        m = _solve(points, 1.0 / (1.0 + ((points @ m - 1.0) / INLIER_TOLERANCE) ** 2), m)
    inliers = np.abs(points @ m - 1.0) < INLIER_TOLERANCE
    for _ in range(REFINE_ROUNDS):
        if inliers.sum() < 3:
            break
        m = _solve(points[inliers], np.ones(int(inliers.sum())), m)
        inliers = np.abs(points @ m - 1.0) < INLIER_TOLERANCE
    return m, inliers


def _no_plane(num_candidates: int) -> GroundFit:
    return GroundFit(float("nan"), np.full(3, np.nan), 0.0, 0, num_candidates, False)


def fit_ground_plane(depth: np.ndarray, K: np.ndarray, seed: int = 0) -> GroundFit:
    """Fits the ground plane to the lower part of a depth map (module docstring).

    RANSAC over planes through 3 candidate points (`RANSAC_ITERATIONS`, scored on at most
    `RANSAC_POINTS` candidates), each within `MAX_TILT_DEG` of the camera's down axis and below the
    camera; the plane with the most inliers is refined by least squares on its inliers
    (`REFINE_ROUNDS`). Deterministic for a given ``seed``.

    Args:
      depth: ``[H, W]`` depth along the optical axis, any positive units (non-finite or <= 0: no
        depth, e.g. sky in a rendered map).
      K: ``[3, 3]`` intrinsics in pixels of the ``H x W`` map (integer pixel centres).
      seed: seed of ``np.random.default_rng`` for the point subset and the RANSAC triples.

    Returns:
      A `GroundFit`; ``height`` is in the units of ``depth``. Without any acceptable plane (e.g. a
      wall fills the image) the height is NaN and ``reliable`` is False.

    Raises:
      ValueError: if ``depth`` is not ``[H, W]`` or ``K`` not ``[3, 3]`` with positive focal lengths.
    """
    depth = np.asarray(depth)
    K = np.asarray(K, np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must have shape [H, W], got {list(depth.shape)}")
    if K.shape != (3, 3):
        raise ValueError(f"K must have shape [3, 3], got {list(K.shape)}")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ValueError(f"K must have positive focal lengths, got fx={K[0, 0]:g}, fy={K[1, 1]:g}")
    points = _candidates(depth, K)
    count = len(points)
    if count < 3:
        return _no_plane(count)
    rng = np.random.default_rng(seed)
    sample = points if count <= RANSAC_POINTS else points[rng.choice(count, RANSAC_POINTS, replace=False)]
    planes = _plane_hypotheses(sample, rng)  # [M, 3]
    if not len(planes):
        return _no_plane(count)
    support = (np.abs(sample @ planes.T - 1.0) < INLIER_TOLERANCE).sum(axis=0)
    m, inliers = _refine(points, planes[int(np.argmax(support))])
    height = 1.0 / float(np.linalg.norm(m))
    normal = m * height
    num_inliers = int(inliers.sum())
    fraction = num_inliers / count
    reliable = num_inliers >= MIN_INLIERS and fraction >= MIN_INLIER_FRACTION
    return GroundFit(height, normal, fraction, num_inliers, count, reliable)


def camera_height_scale(depth: np.ndarray, K: np.ndarray, camera_height: float,
                        seed: int = 0) -> tuple[float, GroundFit]:
    """The factor that makes ``depth`` metric, given the camera's height above a flat ground.

    Args:
      depth: ``[H, W]`` depth in any units (`fit_ground_plane`).
      K: ``[3, 3]`` intrinsics in pixels of the ``H x W`` map.
      camera_height: the camera centre's height above the ground, in metres.
      seed: RANSAC seed.

    Returns:
      ``(scale, fit)``: ``scale = camera_height / fit.height`` (``depth * scale`` is in metres), NaN
      when the fit is not ``reliable``; and the `GroundFit`.

    Raises:
      ValueError: bad shapes (`fit_ground_plane`) or a ``camera_height`` that is not finite and > 0.
    """
    if not (np.isfinite(camera_height) and camera_height > 0):
        raise ValueError(f"camera_height must be a finite number > 0 metres, got {camera_height}")
    fit = fit_ground_plane(depth, K, seed)
    scale = camera_height / fit.height if fit.reliable else float("nan")
    return float(scale), fit
