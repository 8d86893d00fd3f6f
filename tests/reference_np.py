"""Independent NumPy reference implementations used by the geometry and loss tests.

Written from the maths (the paper's equations and the reference conventions), deliberately in a
different style from the TF code (explicit loops, series expansions) so a shared bug is unlikely.
Float64 throughout.
"""

from __future__ import annotations

import numpy as np


def skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrix of a 3-vector."""
    x, y, z = v
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def rotation_exp(v: np.ndarray, terms: int = 30) -> np.ndarray:
    """Rotation matrix exp([v]_x) by its power series (not Rodrigues' closed form)."""
    a = skew(np.asarray(v, np.float64))
    out = np.eye(3)
    term = np.eye(3)
    for k in range(1, terms):
        term = term @ a / k
        out = out + term
    return out


def pose_matrix(v: np.ndarray, t: np.ndarray, invert: bool = False) -> np.ndarray:
    """4x4 [R | t] (or its inverse via np.linalg.inv)."""
    m = np.eye(4)
    m[:3, :3] = rotation_exp(v)
    m[:3, 3] = t
    return np.linalg.inv(m) if invert else m


def backproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Loop over pixels: X = depth * K^-1 [u, v, 1]. depth [B,H,W,1], K [B,3,3] -> [B,H,W,3]."""
    b_, h_, w_, _ = depth.shape
    out = np.zeros((b_, h_, w_, 3))
    for b in range(b_):
        inv = np.linalg.inv(K[b])
        for v in range(h_):
            for u in range(w_):
                out[b, v, u] = depth[b, v, u, 0] * inv @ np.array([u, v, 1.0])
    return out


def project(points: np.ndarray, K: np.ndarray, pose: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Loop over pixels: pixel of pose @ X in a camera K. points [B,H,W,3] -> [B,H,W,2]."""
    b_, h_, w_, _ = points.shape
    out = np.zeros((b_, h_, w_, 2))
    for b in range(b_):
        for v in range(h_):
            for u in range(w_):
                xc = pose[b] @ np.append(points[b, v, u], 1.0)
                p = K[b] @ xc[:3]
                out[b, v, u] = p[:2] / (p[2] + eps)
    return out


def bilinear_sample(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Loop-based border-clamped bilinear sampler in pixel-centre coordinates."""
    b_, h, w, c = image.shape
    _, oh, ow, _ = coords.shape
    out = np.zeros((b_, oh, ow, c))
    for b in range(b_):
        for i in range(oh):
            for j in range(ow):
                x = min(max(coords[b, i, j, 0], 0.0), w - 1.0)
                y = min(max(coords[b, i, j, 1], 0.0), h - 1.0)
                x0, y0 = int(np.floor(x)), int(np.floor(y))
                acc = np.zeros(c)
                for yy in (y0, y0 + 1):
                    for xx in (x0, x0 + 1):
                        weight = (1 - abs(x - xx)) * (1 - abs(y - yy))
                        if weight > 0:
                            acc += weight * image[b, min(yy, h - 1), min(xx, w - 1)]
                out[b, i, j] = acc
    return out


def resize_bilinear_half_pixel(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres, no antialias (torch align_corners=False)."""
    _, h, w, _ = image.shape

    def axis_weights(n_out: int, n_in: int) -> np.ndarray:
        m = np.zeros((n_out, n_in))
        for o in range(n_out):
            src = min(max((o + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1.0)
            lo = int(np.floor(src))
            hi = min(lo + 1, n_in - 1)
            m[o, lo] += 1 - (src - lo)
            m[o, hi] += src - lo
        return m

    rows = axis_weights(height, h)
    cols = axis_weights(width, w)
    return np.einsum("ih,bhwc,jw->bijc", rows, image, cols)


def ssim_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-channel clip((1 - SSIM) / 2, 0, 1), 3x3 windows on reflection-padded images, loops."""
    c1, c2 = 0.01**2, 0.03**2
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    xp = np.pad(x, pad, mode="reflect")
    yp = np.pad(y, pad, mode="reflect")
    b_, h, w, c = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for b in range(b_):
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    px = xp[b, i : i + 3, j : j + 3, k].ravel()
                    py = yp[b, i : i + 3, j : j + 3, k].ravel()
                    mx, my = px.mean(), py.mean()
                    vx = ((px - mx) ** 2).mean()
                    vy = ((py - my) ** 2).mean()
                    cxy = ((px - mx) * (py - my)).mean()
                    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / (
                        (mx**2 + my**2 + c1) * (vx + vy + c2)
                    )
                    out[b, i, j, k] = np.clip((1 - s) / 2, 0, 1)
    return out


def photometric_error(
    pred: np.ndarray, target: np.ndarray, alpha: float = 0.85, use_ssim: bool = True
) -> np.ndarray:
    """alpha * mean_c SSIM loss + (1 - alpha) * mean_c L1 -> [B, H, W, 1]."""
    l1 = np.abs(target - pred).mean(-1, keepdims=True)
    if not use_ssim:
        return l1
    return alpha * ssim_loss(pred, target).mean(-1, keepdims=True) + (1 - alpha) * l1


def edge_aware_smoothness(disp: np.ndarray, image: np.ndarray) -> float:
    """Mean-normalised disparity gradients weighted by exp(-|image gradient|), x term + y term."""
    d = disp / (disp.mean(axis=(1, 2), keepdims=True) + 1e-7)
    dx = np.abs(d[:, :, :-1] - d[:, :, 1:])
    dy = np.abs(d[:, :-1] - d[:, 1:])
    ix = np.abs(image[:, :, :-1] - image[:, :, 1:]).mean(-1, keepdims=True)
    iy = np.abs(image[:, :-1] - image[:, 1:]).mean(-1, keepdims=True)
    return float((dx * np.exp(-ix)).mean() + (dy * np.exp(-iy)).mean())


def disp_to_depth(disp: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Depth from a sigmoid disparity (1 / (1/max + (1/min - 1/max) disp))."""
    return 1.0 / (1.0 / max_depth + (1.0 / min_depth - 1.0 / max_depth) * disp)


def warp(source: np.ndarray, depth: np.ndarray, pose: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Inverse warp of a source image into the target view (loop-based pieces)."""
    return bilinear_sample(source, project(backproject(depth, K), K, pose))


def monodepth2_loss(
    disparities: list[np.ndarray],
    target: list[np.ndarray],
    sources: list[np.ndarray],
    poses: np.ndarray,
    K: np.ndarray,
    *,
    ssim_weight: float = 0.85,
    use_ssim: bool = True,
    min_reprojection: bool = True,
    automask: bool = True,
    full_res_multiscale: bool = True,
    smoothness_weight: float = 1e-3,
    min_depth: float = 0.1,
    max_depth: float = 100.0,
) -> tuple[float, list[np.ndarray]]:
    """The whole multi-scale loss, written out scale by scale without tie-break noise.

    Returns (total, per-scale min_error [B, H, W, 1]).
    """
    _, height, width, _ = target[0].shape
    num_sources = poses.shape[1]
    losses, min_errors = [], []
    for s, disp in enumerate(disparities):
        if full_res_multiscale:
            d = resize_bilinear_half_pixel(disp, height, width)
            tgt, srcs, k = target[0], sources[0], K
        else:
            d = disp
            tgt, srcs = target[s], sources[s]
            k = K.copy()
            k[:, :2] /= 2**s
        depth = disp_to_depth(d, min_depth, max_depth)
        reproj = [
            photometric_error(warp(srcs[:, i], depth, poses[:, i], k), tgt, ssim_weight, use_ssim)
            for i in range(num_sources)
        ]
        reproj = np.concatenate(reproj, -1)
        if not min_reprojection:
            reproj = reproj.mean(-1, keepdims=True)
        channels = [reproj]
        if automask:
            ident = np.concatenate(
                [photometric_error(srcs[:, i], tgt, ssim_weight, use_ssim) for i in range(num_sources)], -1
            )
            if not min_reprojection:
                ident = ident.mean(-1, keepdims=True)
            channels.insert(0, ident)
        min_error = np.concatenate(channels, -1).min(-1, keepdims=True)
        smooth = edge_aware_smoothness(disp, target[s])
        losses.append(min_error.mean() + smoothness_weight * smooth / 2**s)
        min_errors.append(min_error)
    return float(np.mean(losses)), min_errors
