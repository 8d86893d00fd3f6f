"""A stop-and-go video of the synthetic world with known motion, for video tests and measurements.

30 fps (a phone's rate), 45 frames, camera 02 of drive 0 of the seed-0 world driven straight along
the lane: the car moves 0.4 m per frame (43 km/h), brakes over frames 12-14, stands still from frame
15 to frame 30 (oncoming traffic keeps moving) and accelerates again over frames 30-32.

    frames = clip.render_clip()               # uint8 [45, 64, 160, 3]
    clip.write_clip("stop_and_go.mp4", frames)
"""

from __future__ import annotations

import numpy as np

from md2tf.data import video_io
from md2tf.data.synthetic import render, world

FPS = 30
HEIGHT, WIDTH = 64, 160
NUM_FRAMES = 45
SPEED = np.full(NUM_FRAMES, 0.4)  # metres travelled from frame i to frame i + 1
SPEED[12:15] = (0.3, 0.2, 0.1)
SPEED[15:30] = 0.0
SPEED[30:33] = (0.1, 0.2, 0.3)
#: Frames whose viewpoint equals both neighbours' (the camera stands still).
STOPPED = tuple(i for i in range(1, NUM_FRAMES - 1) if SPEED[i - 1] == SPEED[i] == 0.0)
#: Frames at cruising speed with cruising neighbours on both sides.
CRUISING = tuple(i for i in range(1, NUM_FRAMES - 1) if SPEED[i - 1] == SPEED[i] == 0.4)


def render_clip(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """uint8 ``[NUM_FRAMES, height, width, 3]`` RGB frames of the drive described above."""
    config = world.WorldConfig(drives=1, frames=100, height=height, width=width, lidar=False,
                               odometry=False)
    drive = world.make_drive(config, 0)
    z = np.concatenate([[0.0], np.cumsum(SPEED[:-1])])
    position = np.stack([np.full(NUM_FRAMES, drive.cam_position[0, 0]), np.zeros(NUM_FRAMES), z], 1)
    drive = drive._replace(cam_position=position, cam_yaw=np.zeros(NUM_FRAMES))
    K = world.kitti_like_intrinsics(height, width)
    images = [render.render_view(drive, i, 2, K, height, width).image for i in range(NUM_FRAMES)]
    return np.round(np.clip(np.stack(images), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_clip(path: str, frames: np.ndarray, fps: float = FPS, rotation: int = 0) -> None:
    """Encodes ``frames`` (`md2tf.data.video_io.VideoWriter`), optionally with a display rotation in
    degrees counter-clockwise in the stream's metadata, as phones write it."""
    with video_io.VideoWriter(path, fps, rotation=rotation) as writer:
        for image in frames:
            writer.write(image)
