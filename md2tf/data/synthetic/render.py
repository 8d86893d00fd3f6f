"""Vectorised NumPy ray caster for the synthetic street: boxes + ground plane + sky at infinity.

Rays are cast in groups (image tiles, lidar azimuth sectors); each group is tested only against the
boxes whose bounding sphere overlaps the group's cone of directions, so the cost grows with the pixels,
not pixels x boxes. Textures are procedural functions of the hit point in *object* coordinates (the
ground in street coordinates, a box relative to its min corner), band-limited by the pixel footprint,
so they move consistently with the geometry and do not alias. Shading is Lambertian with one fixed sun
direction plus ambient light: the colour of a surface point does not depend on the viewpoint, so GT
depth + GT pose warps one frame onto another exactly up to occlusions, moving cars and resampling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from md2tf.data.synthetic import world as w

_EPS = 1e-6
_SUN = np.array([-0.45, -0.8, -0.4]) / np.linalg.norm([-0.45, -0.8, -0.4])  # towards the sun (y down)
_AMBIENT = 0.55
# Value-noise octaves: frequencies (cycles / metre) in steps of 2.5, so that whatever the pixel
# footprint, some octave lies just below the band limit; flat per-material amplitude spectrum.
_FREQS = 0.3 * 2.5 ** np.arange(w.NOISE_OCTAVES)
_NOISE_AMP = np.zeros(w.NUM_MATERIALS, np.float32)
for _mat, _amp in ((w.MAT_ROAD, 0.17), (w.MAT_SIDEWALK, 0.13), (w.MAT_FACADE, 0.14), (w.MAT_CAR, 0.10),
                   (w.MAT_GLASS, 0.15), (w.MAT_TYRE, 0.25), (w.MAT_POLE, 0.15), (w.MAT_CANOPY, 0.30),
                   (w.MAT_WALL, 0.15)):
    _NOISE_AMP[_mat] = _amp
_GROUND_SEED = 17
_SKY_HORIZON = np.array([0.78, 0.84, 0.92], np.float32)
_SKY_ZENITH = np.array([0.32, 0.52, 0.85], np.float32)


class Hits(NamedTuple):
    """Nearest intersections of rays ``origin + t * dirs``.

    Attributes:
      t: ``[...]`` ray parameter of the hit (``inf`` for the sky). With camera rays ``d = K^-1 [u, v, 1]``
        rotated to the street frame, ``t`` is the camera z-depth in metres.
      box: ``[...]`` int index into the boxes, ``-1`` = ground, ``-2`` = sky.
      axis: ``[...]`` int axis (0, 1, 2) of the box face hit (1 for the ground).
    """

    t: np.ndarray
    box: np.ndarray
    axis: np.ndarray


def cast_rays(origin: np.ndarray, dirs: np.ndarray, boxes: w.Boxes, ground_y: float) -> Hits:
    """Nearest hit of every ray against boxes and the ground plane ``y = ground_y``.

    Args:
      origin: ``[3]`` common ray origin (street frame, metres); must lie outside every box.
      dirs: ``[G, R, 3]`` ray directions in G coherent groups of R rays (need not be unit length).
      boxes: the scene's boxes.
      ground_y: y of the ground plane (y points down).

    Returns:
      `Hits` with arrays of shape ``[G, R]``.

    Raises:
      ValueError: if ``dirs`` is not ``[G, R, 3]``.
    """
    dirs = np.asarray(dirs, np.float64)
    if dirs.ndim != 3 or dirs.shape[-1] != 3:
        raise ValueError(f"dirs must have shape [G, R, 3], got {dirs.shape}")
    origin = np.asarray(origin, np.float64)
    g, r, _ = dirs.shape
    t_best = np.full((g, r), np.inf)
    box_best = np.full((g, r), -2, np.int32)
    axis_best = np.ones((g, r), np.int8)

    # Ground plane.
    dy = dirs[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dy > _EPS, (ground_y - origin[1]) / dy, np.inf)
    ground = np.isfinite(t_ground) & (t_ground > 0)
    t_best[ground] = t_ground[ground]
    box_best[ground] = -1

    if boxes.lo.shape[0] == 0:
        return Hits(t_best, box_best, axis_best)

    # Cone culling: keep, per group, the boxes whose bounding sphere meets the group's cone.
    unit = dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)
    axis_dir = unit.mean(axis=1)
    axis_dir /= np.linalg.norm(axis_dir, axis=-1, keepdims=True)
    cos_half = np.clip(np.einsum("grc,gc->gr", unit, axis_dir).min(axis=1), -1.0, 1.0)
    half = np.arccos(cos_half)  # [G]
    centre = 0.5 * (boxes.lo + boxes.hi) - origin
    radius = 0.5 * np.linalg.norm(boxes.hi - boxes.lo, axis=-1)
    dist = np.linalg.norm(centre, axis=-1)
    inside = dist <= radius
    ang = np.arccos(np.clip(axis_dir @ (centre / np.maximum(dist, _EPS)[:, None]).T, -1.0, 1.0))
    margin = np.arcsin(np.clip(radius / np.maximum(dist, _EPS), 0.0, 1.0))
    keep = inside[None, :] | (ang - margin <= half[:, None] + 1e-6)  # [G, N]

    safe = np.where(np.abs(dirs) < 1e-12, np.where(dirs < 0, -1e-12, 1e-12), dirs)
    inv = np.ascontiguousarray((1.0 / safe).transpose(0, 2, 1)).astype(np.float32)  # [G, 3, R]
    lo_o = (boxes.lo - origin).T.astype(np.float32)  # [3, N]
    hi_o = (boxes.hi - origin).T.astype(np.float32)
    rows = np.arange(r)
    for gi in range(g):
        idx = np.flatnonzero(keep[gi])
        if idx.size == 0:
            continue
        inv_g = inv[gi][:, :, None]  # [3, R, 1]
        t1 = lo_o[:, None, idx] * inv_g  # [3, R, K]
        t2 = hi_o[:, None, idx] * inv_g
        tmin3 = np.minimum(t1, t2)
        tmax3 = np.maximum(t1, t2, out=t1)
        tnear = np.maximum(np.maximum(tmin3[0], tmin3[1]), tmin3[2])
        tfar = np.minimum(np.minimum(tmax3[0], tmax3[1]), tmax3[2])
        miss = (tnear > tfar) | (tnear <= _EPS)
        tnear[miss] = np.inf
        k = tnear.argmin(axis=1)
        tk = tnear[rows, k].astype(np.float64)
        better = tk < t_best[gi]
        t_best[gi] = np.where(better, tk, t_best[gi])
        box_best[gi] = np.where(better, idx[k], box_best[gi])
        axis_best[gi] = np.where(better, tmin3[:, rows, k].argmax(axis=0), axis_best[gi])
    return Hits(t_best, box_best, axis_best)


_HA, _HB, _HC = np.uint32(0x27D4EB2D), np.uint32(0x165667B1), np.uint32(0x9E3779B1)


def _mix01(h: np.ndarray) -> np.ndarray:
    """Avalanche of a uint32 array (murmur3 finaliser, wraps mod 2^32) -> float32 in [0, 1)."""
    h = h ^ (h >> np.uint32(15))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h.astype(np.float32) * np.float32(1.0 / 2**32)


def value_noise(u: np.ndarray, v: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Smooth 2-D value noise in [-1, 1] with unit lattice spacing.

    Args:
      u, v: ``[P]`` float lattice coordinates.
      seed: ``[P]`` integer seeds (one independent noise field per seed).

    Returns:
      ``[P]`` float32.
    """
    fu, fv = np.floor(u), np.floor(v)
    base = (fu.astype(np.int64).astype(np.uint32) * _HA + fv.astype(np.int64).astype(np.uint32) * _HB
            + np.asarray(seed).astype(np.uint32) * _HC)
    su, sv = (u - fu).astype(np.float32), (v - fv).astype(np.float32)
    su, sv = su * su * (3 - 2 * su), sv * sv * (3 - 2 * sv)
    a = _mix01(base)
    b = _mix01(base + _HA)
    c = _mix01(base + _HB)
    d = _mix01(base + (_HA + _HB))
    top = a + (b - a) * su
    bottom = c + (d - c) * su
    return 2.0 * (top + (bottom - top) * sv) - 1.0


def _bandlimit(freq: float | np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Amplitude weight of a pattern of ``freq`` cycles/m under ``footprint`` m/pixel (0 at Nyquist)."""
    return np.clip(2.0 - 4.0 * freq * footprint, 0.0, 1.0).astype(np.float32)


def _stripe(coord: np.ndarray, half_width: float, footprint: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of the band ``|coord| < half_width``, edges smoothed over one footprint."""
    return np.clip((half_width - np.abs(coord)) / np.maximum(footprint, 1e-4) + 0.5, 0.0, 1.0)


def _periodic_box(coord: np.ndarray, period: float, lo: float, hi: float, fp: np.ndarray) -> np.ndarray:
    """Coverage of ``lo <= coord mod period < hi`` (fractions of the period), faded to its mean."""
    phase = np.mod(coord / period, 1.0)
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    cov = _stripe((phase - centre) * period, half * period, fp)
    wgt = _bandlimit(1.0 / period, fp)
    return wgt * cov + (1 - wgt) * (hi - lo)


def shade(origin: np.ndarray, dirs: np.ndarray, hits: Hits, boxes: w.Boxes, pixel_angle: float,
          ground_y: float, texture_contrast: float = 1.0,
          texture_octaves: int = w.NOISE_OCTAVES) -> np.ndarray:
    """Colour of each ray's hit (sky colour for misses).

    Args:
      origin: ``[3]`` ray origin (street frame).
      dirs: ``[P, 3]`` ray directions (street frame).
      hits: `Hits` with arrays of shape ``[P]``.
      boxes: the boxes ``hits.box`` indexes.
      pixel_angle: angle subtended by one pixel (radians), for texture band-limiting.
      ground_y: y of the ground plane.
      texture_contrast: multiplier of the noise textures' amplitude (the per-material noise and the
        red/blue tint): the green albedo is ``base * (1 + texture_contrast * noise)``, linear in it;
        0 leaves each surface its flat colour (markings, slabs and windows stay).
      texture_octaves: how many of the noise octaves (``_FREQS``, lowest first) make the texture;
        fewer leave only coarse blotches, with little fine detail for a photometric match.

    Returns:
      ``[P, 3]`` float32 RGB in [0, 1].
    """
    p_count = dirs.shape[0]
    norm = np.linalg.norm(dirs, axis=-1)
    unit = dirs / norm[:, None]
    rgb = np.empty((p_count, 3), np.float32)

    sky = hits.box == -2
    elev = np.clip(-unit[sky, 1] * 3.0, 0.0, 1.0)[:, None].astype(np.float32)
    rgb[sky] = _SKY_HORIZON + (_SKY_ZENITH - _SKY_HORIZON) * elev

    sel = ~sky
    t = hits.t[sel]
    d = dirs[sel]
    pt = origin + t[:, None] * d
    box = hits.box[sel]
    is_box = box >= 0
    bi = np.where(is_box, box, 0)
    axis = np.where(is_box, hits.axis[sel], 1).astype(np.int64)
    n_sel = t.shape[0]

    # Normals are axis-aligned: +-1 along `axis` (the ground's is up = -y).
    rows = np.arange(n_sel)
    d_axis = d[rows, axis]
    normal_sign = np.where(is_box, -np.sign(d_axis), -1.0)
    cos_inc = np.abs(d_axis) / norm[sel]
    footprint = (t * norm[sel] * pixel_angle / np.maximum(cos_inc, 0.05)).astype(np.float32)

    # Texture coordinates: box faces in box-local coordinates, the ground in street (x, z).
    local = np.where(is_box[:, None], pt - boxes.lo[bi], pt)
    tu = np.where(axis == 0, local[:, 2], local[:, 0]).astype(np.float32)
    tv = np.where(axis == 1, local[:, 2], local[:, 1]).astype(np.float32)
    abs_x = np.abs(pt[:, 0])
    material = np.where(is_box, boxes.material[bi],
                        np.where(abs_x < w.ROAD_HALF_WIDTH_M, w.MAT_ROAD, w.MAT_SIDEWALK))
    seed = np.where(is_box, boxes.tex_seed[bi], _GROUND_SEED + material).astype(np.int64)
    seed = seed * 8 + axis  # different texture on each face orientation

    base = np.where(is_box[:, None], boxes.color[bi],
                    np.where((material == w.MAT_ROAD)[:, None], np.float32(0.33), np.float32(0.58)))
    base = base.astype(np.float32)
    tex = np.zeros(n_sel, np.float32)
    for o, f in enumerate(_FREQS[:texture_octaves]):
        tex += _bandlimit(f, footprint) * value_noise(tu * np.float32(f), tv * np.float32(f), seed + 101 * o)
    tex *= _NOISE_AMP[material] * np.float32(texture_contrast)
    # A touch of per-channel variation so the texture is not grey-only.
    tint = 0.06 * np.float32(texture_contrast) * value_noise(
        tu * np.float32(2.0) + np.float32(7.3), tv * np.float32(2.0), seed + 999)
    albedo = base * (1.0 + tex)[:, None]
    albedo[:, 0] *= 1.0 + tint
    albedo[:, 2] *= 1.0 - tint

    # Road markings: dashed centre line, solid edge lines.
    road = material == w.MAT_ROAD
    if road.any():
        x, z, fp = pt[road, 0], pt[road, 2], footprint[road]
        dash = _periodic_box(z, 6.0, 0.0, 0.5, fp)
        line = np.maximum(_stripe(x, 0.075, fp) * dash,
                          _stripe(np.abs(x) - (w.ROAD_HALF_WIDTH_M - 0.25), 0.08, fp))
        albedo[road] = albedo[road] * (1 - line[:, None]) + np.float32(0.9) * line[:, None]
    # Sidewalk slabs.
    walk = material == w.MAT_SIDEWALK
    if walk.any():
        fp = footprint[walk]
        gx = _periodic_box(pt[walk, 0], 0.6, 0.0, 0.06, fp)
        gz = _periodic_box(pt[walk, 2], 0.6, 0.0, 0.06, fp)
        grout = np.maximum(gx, gz)
        albedo[walk] *= (1 - 0.35 * grout)[:, None]
    # Windows on building facades (vertical faces only).
    fac = (material == w.MAT_FACADE) & (axis != 1)
    if fac.any():
        fp = footprint[fac]
        win = _periodic_box(tu[fac], 2.6, 0.25, 0.75, fp) * _periodic_box(tv[fac], 3.2, 0.3, 0.75, fp)
        win = win * (tv[fac] > 1.0)
        glass = np.float32([0.12, 0.16, 0.24]) * (1.0 + 0.5 * tex[fac])[:, None]
        albedo[fac] = albedo[fac] * (1 - win[:, None]) + glass * win[:, None]

    light = _AMBIENT + (1 - _AMBIENT) * np.maximum(normal_sign * _SUN[axis], 0.0)
    rgb[sel] = albedo * light[:, None].astype(np.float32)
    return np.clip(rgb, 0.0, 1.0)


class RenderOutput(NamedTuple):
    """A rendered view.

    Attributes:
      image: ``[H, W, 3]`` float32 RGB in [0, 1].
      depth: ``[H, W]`` float32 camera z-depth in metres; 0 for the sky.
      box: ``[H, W]`` int32 index of the box seen (``-1`` ground, ``-2`` sky).
      moving: ``[H, W]`` bool, True on moving cars.
    """

    image: np.ndarray
    depth: np.ndarray
    box: np.ndarray
    moving: np.ndarray


def camera_rays(intrinsics: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[H, W, 3]`` camera-frame rays ``K^-1 [u, v, 1]`` (z = 1) at integer pixel centres."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    k = np.asarray(intrinsics, np.float64)
    x = (u - k[0, 2]) / k[0, 0]
    y = (v - k[1, 2]) / k[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def render_view(drive: w.Drive, frame: int, camera: int, intrinsics: np.ndarray, height: int,
                width: int, tile: int = 32, boxes: w.Boxes | None = None) -> RenderOutput:
    """Renders camera ``camera`` (2 = left, 3 = right) of ``drive`` at ``frame``.

    Args:
      drive: the drive.
      frame: frame index in ``[0, drive.num_frames)``.
      camera: 2 or 3.
      intrinsics: ``[3, 3]`` K in pixels.
      height, width: image size in pixels.
      tile: tile side in pixels for ray-group culling.
      boxes: ``drive.boxes_at(frame)`` if already computed.

    Returns:
      `RenderOutput`.
    """
    if not 0 <= frame < drive.num_frames:
        raise ValueError(f"frame must lie in [0, {drive.num_frames}), got {frame}")
    boxes = drive.boxes_at(frame) if boxes is None else boxes
    pose = drive.street_from_camera(frame, camera)
    rays = camera_rays(intrinsics, height, width) @ pose[:3, :3].T  # [H, W, 3] street frame
    origin = pose[:3, 3]
    th, tw = min(tile, height), min(tile, width)
    gh, gw = -(-height // th), -(-width // tw)
    padded = np.pad(rays, ((0, gh * th - height), (0, gw * tw - width), (0, 0)), mode="edge")
    groups = padded.reshape(gh, th, gw, tw, 3).transpose(0, 2, 1, 3, 4).reshape(gh * gw, th * tw, 3)
    hits = cast_rays(origin, groups, boxes, drive.camera_height)

    def ungroup(a: np.ndarray) -> np.ndarray:
        return a.reshape(gh, gw, th, tw).transpose(0, 2, 1, 3).reshape(gh * th, gw * tw)[:height, :width]

    hits = Hits(*(ungroup(a) for a in hits))
    flat = Hits(*(a.reshape(-1) for a in hits))
    pixel_angle = 0.5 * (1.0 / intrinsics[0][0] + 1.0 / intrinsics[1][1])
    rgb = shade(origin, rays.reshape(-1, 3), flat, boxes, pixel_angle, drive.camera_height,
                drive.texture_contrast, drive.texture_octaves)
    depth = np.where(hits.box == -2, 0.0, hits.t).astype(np.float32)
    moving = np.zeros(hits.box.shape, bool)
    is_box = hits.box >= 0
    moving[is_box] = boxes.moving[hits.box[is_box]]
    return RenderOutput(rgb.reshape(height, width, 3), depth, hits.box.astype(np.int32), moving)
