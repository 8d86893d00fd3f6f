"""A short video rendered from the synthetic world with known motion: cruise, brake, stop, go.

30 fps (a phone's rate), 64x160 pixels, 45 frames, camera-02 of drive 0 of the seed-0 world driven
straight along the lane. The car moves 0.4 m per frame, brakes over frames 12-14, stands still from
frame 15 to frame 30 (frames 16..30 repeat frame 15's viewpoint; oncoming traffic still moves) and
accelerates again from frame 31.
"""

from __future__ import annotations

import numpy as np

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


def render_frames() -> np.ndarray:
    """uint8 ``[NUM_FRAMES, HEIGHT, WIDTH, 3]`` RGB frames of the drive described above."""
    from md2tf.data.synthetic import render, world

    config = world.WorldConfig(drives=1, frames=100, height=HEIGHT, width=WIDTH, lidar=False,
                               odometry=False)
    drive = world.make_drive(config, 0)
    z = np.concatenate([[0.0], np.cumsum(SPEED[:-1])])
    position = np.stack([np.full(NUM_FRAMES, drive.cam_position[0, 0]), np.zeros(NUM_FRAMES), z], 1)
    drive = drive._replace(cam_position=position, cam_yaw=np.zeros(NUM_FRAMES))
    K = world.kitti_like_intrinsics(HEIGHT, WIDTH)
    images = [render.render_view(drive, i, 2, K, HEIGHT, WIDTH).image for i in range(NUM_FRAMES)]
    return np.round(np.clip(np.stack(images), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_video(path: str, frames: np.ndarray, fps: float = FPS, rotation: int = 0) -> None:
    """Encodes ``frames`` with PyAV (H.264 when available, else MPEG-4), optionally with a display
    rotation (degrees counter-clockwise) in the stream's metadata, as phones write it."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"} if codec == "libx264" else {"qscale": "2"}
        if rotation:
            stream.set_display_rotation(rotation)
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
