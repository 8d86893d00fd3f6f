"""Procedural street scenes and camera trajectories for the synthetic driving world.

Frames and units (metres, seconds are frames at 10 Hz like KITTI):

* **Street frame** (internal): x right, y down, z along the street; the ground is the plane
  ``y = camera_height`` and every camera centre has ``y = 0``. By default the vehicle only yaws, so the
  ground is also ``y_cam = camera_height`` in every camera frame, which gives an analytic ground-plane
  depth; ``WorldConfig.pitch_deg`` adds a pitch about the camera's own x axis and ``pan_deg`` a pan
  about its vertical axis (the centres stay put).
* **Camera frame** (camera 02, the left colour camera): x right, y down, z forward. Camera 03 is the
  same rotation shifted by ``+baseline`` along x.
* **World frame of the written poses** = camera 02 at frame 0 of the drive (KITTI odometry style), so
  the first pose is the identity.

A scene is a list of axis-aligned boxes (buildings, walls closing the street, parked and moving cars,
poles and trees) over an infinite ground plane, with the sky at infinity. Moving cars are boxes whose
position is a function of the frame index; some keep the camera's own speed (a fixed offset ahead of
it), others are oncoming.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# The world's settings are a config like the others (one field per parameter), re-exported here.
from md2tf.config import KITTI_BASELINE_M as KITTI_BASELINE_M
from md2tf.config import KITTI_CAMERA_HEIGHT_M as KITTI_CAMERA_HEIGHT_M
from md2tf.config import NOISE_OCTAVES, WorldConfig

# KITTI raw rectified camera 02 (2011_09_26): fx = fy = 721.5377 px at 1242 x 375.
KITTI_FOCAL_PX = 721.5377
KITTI_SIZE_HW = (375, 1242)
# Camera 02 sits 0.06 m left of the reference camera 00 on the KITTI rig (P_rect_02[0, 3] = fx * 0.06).
CAM2_OFFSET_FROM_CAM0_M = -0.06
# Velodyne origin in camera-00 coordinates (x right, y down, z forward): 8 cm above, 27 cm behind.
VELO_IN_CAM0_M = (0.0, -0.08, -0.27)

# Materials (row index of the texture tables in render.py).
MAT_SKY = 0
MAT_ROAD = 1
MAT_SIDEWALK = 2
MAT_FACADE = 3
MAT_CAR = 4
MAT_GLASS = 5
MAT_TYRE = 6
MAT_POLE = 7
MAT_CANOPY = 8
MAT_WALL = 9
NUM_MATERIALS = 10

ROAD_HALF_WIDTH_M = 5.0
SIDEWALK_OUTER_M = 7.5
LANE_CENTRE_M = 1.75


def kitti_like_intrinsics(height: int, width: int) -> np.ndarray:
    """Pinhole K of a KITTI image resized to ``height x width``, principal point at the image centre.

    ``fx = 721.5377 * W / 1242``, ``fy = 721.5377 * H / 375`` (non-square pixels for other aspect ratios,
    exactly as a resized KITTI image), ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``: the exact centre with
    integer pixel centres, so horizontal flips and half-pixel-centre resizing keep K exact (the paper's
    normalised 0.5 is half a pixel off from this, i.e. ``cx / W = 0.5 - 0.5 / W``).

    Returns:
      ``[3, 3]`` float64 intrinsics in pixels (integer pixel coordinates at pixel centres).
    """
    fx = KITTI_FOCAL_PX * width / KITTI_SIZE_HW[1]
    fy = KITTI_FOCAL_PX * height / KITTI_SIZE_HW[0]
    return np.array([[fx, 0.0, (width - 1) / 2.0], [0.0, fy, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def camera_intrinsics(config: WorldConfig) -> np.ndarray:
    """Pinhole K of the world's cameras (02 and 03 alike) at ``config.height x config.width``.

    ``fov_deg = 0`` gives `kitti_like_intrinsics`; otherwise square pixels with
    ``fx = fy = W / (2 tan(fov_deg / 2))`` (the horizontal field of view spans the W pixel widths).
    The principal point is the exact centre ``((W - 1) / 2, (H - 1) / 2)`` moved by
    ``principal_offset_x * W`` and ``principal_offset_y * H`` pixels.

    Args:
      config: a world with its image size resolved (`WorldConfig.resolved`).

    Returns:
      ``[3, 3]`` float64 intrinsics in pixels (integer pixel coordinates at pixel centres).

    Raises:
      ValueError: if the image size is still open (0).
    """
    height, width = config.height, config.width
    if height <= 0 or width <= 0:
        raise ValueError(f"camera_intrinsics needs a resolved image size, got {height} x {width}")
    k = kitti_like_intrinsics(height, width)
    if config.fov_deg:
        k[0, 0] = k[1, 1] = width / (2.0 * np.tan(np.deg2rad(config.fov_deg) / 2.0))
    k[0, 2] += config.principal_offset_x * width
    k[1, 2] += config.principal_offset_y * height
    return k


class Boxes(NamedTuple):
    """N axis-aligned boxes in the street frame.

    Attributes:
      lo, hi: ``[N, 3]`` float64 min / max corners (metres).
      material: ``[N]`` int32 material id (``MAT_*``).
      color: ``[N, 3]`` float32 base albedo in [0, 1].
      tex_seed: ``[N]`` int64 per-box texture seed (texture coordinates are relative to ``lo``, so a
        moving box carries its texture along).
      moving: ``[N]`` bool, True for boxes of moving cars.
    """

    lo: np.ndarray
    hi: np.ndarray
    material: np.ndarray
    color: np.ndarray
    tex_seed: np.ndarray
    moving: np.ndarray

    @staticmethod
    def concat(parts: list[Boxes]) -> Boxes:
        return Boxes(*[np.concatenate([getattr(p, f) for p in parts]) for f in Boxes._fields])


class _BoxList:
    """Accumulates boxes, then freezes them into a `Boxes`."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, lo, hi, material: int, color, tex_seed: int, moving: bool = False) -> None:
        self.rows.append((lo, hi, material, color, tex_seed, moving))

    def freeze(self) -> Boxes:
        if not self.rows:
            return Boxes(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, np.int32),
                         np.zeros((0, 3), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
        lo, hi, mat, col, seed, mov = zip(*self.rows, strict=True)
        return Boxes(np.asarray(lo, np.float64), np.asarray(hi, np.float64), np.asarray(mat, np.int32),
                     np.asarray(col, np.float32), np.asarray(seed, np.int64), np.asarray(mov, bool))


def _car_boxes(out: _BoxList, x: float, z: float, ground: float, color, seed: int, moving: bool,
               length: float = 4.2, width: float = 1.8) -> None:
    """A car centred at (x, z) on the ground: body, cabin (glass) and two axle (tyre) boxes."""
    hw, hl = width / 2, length / 2
    out.add((x - hw, ground - 1.0, z - hl), (x + hw, ground - 0.3, z + hl), MAT_CAR, color, seed, moving)
    out.add((x - hw + 0.1, ground - 1.45, z - hl + 1.0), (x + hw - 0.1, ground - 1.0, z + hl - 1.2),
            MAT_GLASS, (0.15, 0.17, 0.2), seed + 1, moving)
    for dz in (-hl + 0.9, hl - 0.9):
        out.add((x - hw + 0.05, ground - 0.62, z + dz - 0.32), (x + hw - 0.05, ground, z + dz + 0.32),
                MAT_TYRE, (0.08, 0.08, 0.08), seed + 2, moving)


class MovingCar(NamedTuple):
    """A car whose centre is ``(x, z0 + v * t)`` (``follow``: ``z_cam(t) + z0``) at frame t."""

    x: float
    z0: float
    speed: float
    follow: bool
    color: tuple[float, float, float]
    seed: int


class Drive(NamedTuple):
    """One drive: static scene, moving cars and the camera-02 trajectory in the street frame.

    Attributes:
      index: drive number (the ``NNNN`` of ``<date>_drive_NNNN_sync``).
      static: static boxes.
      cars: moving cars.
      cam_position: ``[T, 3]`` camera-02 centres in the street frame (metres; y = 0).
      cam_yaw: ``[T]`` heading in radians (rotation about +y; positive turns towards +x).
      camera_height: metres above the ground plane.
      baseline: stereo baseline (metres).
      texture_contrast: multiplier of the surfaces' noise-texture amplitude (1 = the default world).
      texture_octaves: octaves of the surfaces' noise texture (6 = the default world).
      cam_pitch: ``[T]`` pitch in radians (rotation about the camera's x axis after the yaw; positive
        raises the view), or None for none.
      cam_pan: ``[T]`` pan in radians added to the heading ``cam_yaw`` (the camera's own rotation
        about the vertical), or None for none.
    """

    index: int
    static: Boxes
    cars: tuple[MovingCar, ...]
    cam_position: np.ndarray
    cam_yaw: np.ndarray
    camera_height: float
    baseline: float
    texture_contrast: float = 1.0
    texture_octaves: int = NOISE_OCTAVES
    cam_pitch: np.ndarray | None = None
    cam_pan: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.cam_position.shape[0])

    def boxes_at(self, frame: int) -> Boxes:
        """All boxes (static first, then moving cars) at ``frame``."""
        out = _BoxList()
        for car in self.cars:
            z = car.z0 + (self.cam_position[frame, 2] if car.follow else car.speed * frame)
            _car_boxes(out, car.x, z, self.camera_height, car.color, car.seed, moving=True)
        return Boxes.concat([self.static, out.freeze()])

    def street_from_camera(self, frame: int, camera: int = 2) -> np.ndarray:
        """``[4, 4]`` rigid transform mapping camera-``camera`` (2 or 3) points into the street frame."""
        yaw = self.cam_yaw[frame] + (0.0 if self.cam_pan is None else self.cam_pan[frame])
        c, s = np.cos(yaw), np.sin(yaw)
        m = np.eye(4)
        m[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
        if self.cam_pitch is not None:  # y down: a positive pitch turns +z towards -y (up)
            cp, sp = np.cos(self.cam_pitch[frame]), np.sin(self.cam_pitch[frame])
            m[:3, :3] = m[:3, :3] @ np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
        m[:3, 3] = self.cam_position[frame]
        if camera == 3:
            m[:3, 3] += m[:3, :3] @ np.array([self.baseline, 0.0, 0.0])
        elif camera != 2:
            raise ValueError(f"camera must be 2 or 3, got {camera}")
        return m

    def world_from_camera(self, frame: int) -> np.ndarray:
        """``[4, 4]`` camera-02 pose at ``frame`` in the drive's world frame (camera 02 at frame 0)."""
        return np.linalg.inv(self.street_from_camera(0)) @ self.street_from_camera(frame)


def _speed_profile(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Per-frame forward speed (metres / frame at 10 Hz): cruising, speed changes and full stops."""
    targets = np.empty(frames)
    t = 0
    stops = 0
    max_stops = max(1, frames // 60)
    previous_stop = False
    while t < frames:
        stop = (stops == 0 and t > 0.2 * frames) or rng.random() < 0.07
        if stop and frames >= 20 and stops < max_stops and not previous_stop:
            n = int(rng.integers(9, 16))  # braking takes ~5 of these frames
            targets[t:t + n] = 0.0
            stops += 1
            previous_stop = True
        else:
            previous_stop = False
            n = int(rng.integers(8, 25))
            targets[t:t + n] = rng.uniform(0.5, 1.4)
        t += n
    speed = np.empty(frames)
    v = rng.uniform(0.6, 1.2)
    for i in range(frames):
        dv = np.clip(targets[i] - v, -0.25, 0.15)  # braking is harder than accelerating
        v = max(v + dv, 0.0)
        speed[i] = v
    return speed


def _speed_fluctuation(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """``[frames]`` speed multiplier ``1 + amplitude * f(t)``, ``f`` the mean of two sinusoids with
    periods of 20-60 frames (2-6 s at 10 Hz) and random phases, so ``|f| <= 1`` and the speed changes
    smoothly, never in steps. Stops stay stops (the multiplier scales zero speed to zero)."""
    t = np.arange(frames)
    periods, phases = rng.uniform(20.0, 60.0, 2), rng.uniform(0.0, 2 * np.pi, 2)
    return 1.0 + amplitude * np.sin(2 * np.pi * t / periods[:, None] + phases[:, None]).mean(axis=0)


def _oscillation(rng: np.random.Generator, frames: int, amplitude_deg: float) -> np.ndarray:
    """``[frames]`` angle in radians: ``amplitude_deg`` times the mean of two sinusoids with periods of
    10-30 frames (1-3 s at 10 Hz: a car body's pitching, a handheld camera's panning) and random
    phases, so ``|angle| <= amplitude``."""
    t = np.arange(frames)
    periods, phases = rng.uniform(10.0, 30.0, 2), rng.uniform(0.0, 2 * np.pi, 2)
    return np.radians(amplitude_deg) * np.sin(2 * np.pi * t / periods[:, None] + phases[:, None]).mean(axis=0)


def make_drive(config: WorldConfig, index: int) -> Drive:
    """Generates drive ``index`` of the world (deterministic in ``config.seed`` and ``index``)."""
    rng = np.random.default_rng([config.seed, index])
    g = config.camera_height
    frames = config.frames

    speed = _speed_profile(rng, frames)
    # The street's extent follows the unfluctuated profile, and the fluctuation has its own generator,
    # so the scene (drawn from `rng` below) is the same at every speed variation.
    z_hi = float(np.cumsum(speed[:-1])[-1]) + 160.0  # = z[-1] without the fluctuation
    if config.speed_variation:
        speed = speed * _speed_fluctuation(np.random.default_rng([config.seed, index, 1]), frames,
                                           config.speed_variation)
    z = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    # Gentle turns: the rig centre weaves within the lane (heading up to ~3.6 degrees).
    amp, wavelength, phase = rng.uniform(0.2, 0.6), rng.uniform(60.0, 150.0), rng.uniform(0, 2 * np.pi)
    x = LANE_CENTRE_M - config.baseline / 2 + amp * np.sin(2 * np.pi * z / wavelength + phase)
    yaw = np.arctan(amp * 2 * np.pi / wavelength * np.cos(2 * np.pi * z / wavelength + phase))
    cam_position = np.stack([x, np.zeros(frames), z], axis=1)
    z_lo = -60.0

    boxes = _BoxList()
    seed = 1000
    # Buildings along both sides, with alleys between some of them.
    for side in (-1.0, 1.0):
        zc = z_lo
        while zc < z_hi:
            length = rng.uniform(6.0, 20.0)
            front = SIDEWALK_OUTER_M + rng.uniform(0.0, 1.5)
            height = rng.uniform(6.0, 20.0)
            color = rng.uniform(0.35, 0.85, 3)
            x0, x1 = (front, front + 10.0) if side > 0 else (-front - 10.0, -front)
            boxes.add((x0, g - height, zc), (x1, g, zc + length), MAT_FACADE, color, seed)
            seed += 7
            zc += length + (rng.uniform(2.0, 5.0) if rng.random() < 0.25 else 0.0)
        # A back wall that closes the alleys.
        xw = 30.0 * side
        boxes.add((min(xw, xw + 2 * side), g - 12.0, z_lo), (max(xw, xw + 2 * side), g, z_hi),
                  MAT_WALL, (0.6, 0.55, 0.5), seed)
        seed += 7
    # Walls closing the street at both ends (so that no ground extends to the horizon).
    boxes.add((-40.0, g - 15.0, z_hi), (40.0, g, z_hi + 2.0), MAT_WALL, (0.55, 0.6, 0.65), seed)
    boxes.add((-40.0, g - 15.0, z_lo - 2.0), (40.0, g, z_lo), MAT_WALL, (0.55, 0.6, 0.65), seed + 7)
    seed += 14
    # Poles and trees on the sidewalks.
    for side in (-1.0, 1.0):
        zc = z_lo + rng.uniform(0.0, 10.0)
        while zc < z_hi:
            xp = side * rng.uniform(5.6, 6.6)
            if rng.random() < 0.5:  # pole
                boxes.add((xp - 0.1, g - 6.0, zc - 0.1), (xp + 0.1, g, zc + 0.1), MAT_POLE,
                          (0.5, 0.5, 0.52), seed)
            else:  # tree: trunk + canopy
                boxes.add((xp - 0.15, g - 3.0, zc - 0.15), (xp + 0.15, g, zc + 0.15), MAT_POLE,
                          (0.35, 0.25, 0.15), seed)
                r = rng.uniform(1.0, 1.8)
                boxes.add((xp - r, g - 3.0 - 2 * r, zc - r), (xp + r, g - 3.0, zc + r), MAT_CANOPY,
                          (0.2, 0.45, 0.15) + rng.uniform(-0.05, 0.05, 3), seed + 3)
            seed += 7
            zc += rng.uniform(8.0, 20.0)
    # Parked cars at the road edges (not where the camera starts, to keep frame 0 unobstructed).
    for side in (-1.0, 1.0):
        zc = z_lo + rng.uniform(0.0, 5.0)
        while zc < z_hi:
            if rng.random() < 0.6:
                _car_boxes(boxes, side * rng.uniform(3.8, 4.1), zc, g, rng.uniform(0.1, 0.9, 3), seed,
                           moving=False)
            seed += 7
            zc += rng.uniform(5.0, 9.0)
    static = boxes.freeze()

    cars = []
    # Cars at the camera's own speed, ahead in the camera's lane (static relative to the camera).
    for _ in range(int(rng.integers(1, 3))):
        cars.append(MovingCar(LANE_CENTRE_M, rng.uniform(12.0, 40.0), 0.0, True,
                              tuple(rng.uniform(0.1, 0.9, 3)), seed))
        seed += 7
        if len(cars) == 2 and abs(cars[0].z0 - cars[1].z0) < 6.0:
            cars.pop()
    # Oncoming traffic in the other lane: one speed for the lane (cars never run into each other),
    # gaps of 12-50 m, placed so that the cars pass the camera during the drive.
    v = rng.uniform(0.8, 1.6)
    z0 = rng.uniform(15.0, 40.0)
    while z0 < z_hi + v * frames:
        cars.append(MovingCar(-LANE_CENTRE_M, z0, -v, False, tuple(rng.uniform(0.1, 0.9, 3)), seed))
        seed += 7
        z0 += rng.uniform(12.0, 50.0)
    # Their own generators, as the speed's fluctuation: the scene is the same at every pitch and pan.
    pitch = (_oscillation(np.random.default_rng([config.seed, index, 2]), frames, config.pitch_deg)
             if config.pitch_deg else None)
    pan = (_oscillation(np.random.default_rng([config.seed, index, 3]), frames, config.pan_deg)
           if config.pan_deg else None)
    return Drive(index, static, tuple(cars), cam_position, yaw, g, config.baseline, config.texture_contrast,
                 config.texture_octaves, pitch, pan)
