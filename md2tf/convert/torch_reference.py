"""The Monodepth2 networks in PyTorch, written from the architecture description, with the
reference checkpoints' ``state_dict`` key names.

One implementation serves two users:

* the converter parity tests (``tests/convert/test_torch_parity.py``): random weights in PyTorch
  layout (`randomize_`, `state_numpy`) go through `md2tf.convert.load_torch_state_dict`, and the
  md2tf outputs are compared with these forwards (`nchw` / `nhwc` move arrays between layouts);
* ``scripts/benchmark.py --compare-torch``: `DepthNet` for inference latency and `MonoTrainStep`
  for one monocular training step, timed side by side with md2tf.

This is an independent implementation of the published architecture (paper Table 5, torchvision's
ResNet description; NCHW): it is not, and does not import, the official code. Only the parameter
*names* follow the official checkpoint files' layout: ``encoder.conv1``,
``encoder.layer2.0.downsample.0``, ``decoder.{k}.conv.conv``, ``decoder.{10+s}.conv``, ``net.{k}``.

Needs the optional ``torch`` extra. ``md2tf.convert`` does not import this module, so
``import md2tf.convert`` works without torch; import this module only where torch is installed
(tests: after ``pytest.importorskip("torch")``; the benchmark catches the ``ImportError``).
"""

from __future__ import annotations

import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "md2tf.convert.torch_reference needs PyTorch (the optional 'torch' extra: "
        "pip install 'md2tf[torch]')"
    ) from e

# Channels of the five encoder outputs (1/2 ... 1/32) before the bottleneck expansion, and the
# decoder widths from 1/1 (index 0) to 1/16 (index 4).
ENCODER_WIDTHS = (64, 64, 128, 256, 512)
DECODER_WIDTHS = (16, 32, 64, 128, 256)
# ImageNet-style input normalisation of the reference encoders.
INPUT_MEAN, INPUT_STD = 0.45, 0.225

# --- ResNet encoder ---------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet18/34)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 convolutions with 4x channel expansion (ResNet50)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


RESNET_LAYOUTS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNetTrunk(nn.Module):
    """A torchvision-layout ResNet (``conv1``, ``bn1``, ``layer1..4``, ``fc``).

    ``fc`` is never used in the forward pass; it is present so that the ``state_dict`` has the same
    keys as torchvision's (the converter must ignore it).
    """

    def __init__(self, num_layers: int, in_channels: int):
        super().__init__()
        if num_layers not in RESNET_LAYOUTS:
            raise ValueError(
                f"num_layers must be one of {sorted(RESNET_LAYOUTS)}, got {num_layers}"
            )
        block, counts = RESNET_LAYOUTS[num_layers]
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for stage, (planes, n) in enumerate(zip(ENCODER_WIDTHS[1:], counts), start=1):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if stage > 1 and j == 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, 1000)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[B, C, H, W]`` in [0, 1] -> five feature maps at 1/2, 1/4, 1/8, 1/16, 1/32."""
        x = (x - INPUT_MEAN) / INPUT_STD
        feats = [F.relu(self.bn1(self.conv1(x)))]
        x = F.max_pool2d(feats[0], 3, 2, 1)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
            feats.append(x)
        return feats


class ResnetEncoder(nn.Module):
    """Reference encoder: ``state_dict`` keys ``encoder.conv1.weight``, ``encoder.layer1.0...``.

    Args:
      num_layers: 18, 34 or 50.
      num_images: frames stacked on the channel axis (1 for depth, 2 for pose).
    """

    def __init__(self, num_layers: int = 18, num_images: int = 1):
        super().__init__()
        self.encoder = ResNetTrunk(num_layers, 3 * num_images)
        expansion = RESNET_LAYOUTS[num_layers][0].expansion
        self.num_ch_enc = [ENCODER_WIDTHS[0]] + [c * expansion for c in ENCODER_WIDTHS[1:]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder.features(x)


# --- depth decoder ----------------------------------------------------------------------------------


class Conv3x3(nn.Module):
    """Reflection-padded 3x3 convolution (keys ``conv.weight``, ``conv.bias``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 3)

    def forward(self, x):
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """`Conv3x3` then ELU (keys ``conv.conv.weight``, ``conv.conv.bias``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = Conv3x3(cin, cout)

    def forward(self, x):
        return F.elu(self.conv(x))


class DepthDecoder(nn.Module):
    """U-Net decoder; ``decoder.{2*(4-i)}`` / ``decoder.{2*(4-i)+1}`` are the two blocks at level
    ``i`` and ``decoder.{10+k}`` the disparity head of ``scales[k]`` (``decoder.{10+s}`` for the
    default scales (0, 1, 2, 3), as in the reference checkpoints).

    Args:
      enc_channels: channels of the five encoder features (`ResnetEncoder.num_ch_enc`).
      scales: output scales; scale ``s`` has resolution 1/2**s.

    Returns (forward): sigmoid disparities ``[B, 1, H/2**s, W/2**s]``, one per scale, in ``scales``
    order.
    """

    def __init__(self, enc_channels, scales=(0, 1, 2, 3)):
        super().__init__()
        dec = DECODER_WIDTHS
        mods = []
        for i in range(4, -1, -1):
            mods.append(ConvBlock(enc_channels[-1] if i == 4 else dec[i + 1], dec[i]))
            mods.append(ConvBlock(dec[i] + (enc_channels[i - 1] if i > 0 else 0), dec[i]))
        mods += [Conv3x3(dec[s], 1) for s in scales]
        self.decoder = nn.ModuleList(mods)
        self.scales = tuple(scales)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        x, out = feats[-1], {}
        for i in range(4, -1, -1):
            x = F.interpolate(self.decoder[2 * (4 - i)](x), scale_factor=2, mode="nearest")
            if i > 0:
                x = torch.cat([x, feats[i - 1]], 1)
            x = self.decoder[2 * (4 - i) + 1](x)
            if i in self.scales:
                out[i] = torch.sigmoid(self.decoder[10 + self.scales.index(i)](x))
        return [out[s] for s in self.scales]


# --- pose decoder -----------------------------------------------------------------------------------


class PoseDecoder(nn.Module):
    """Squeeze 1x1, two 3x3, a 1x1 to 12 channels, spatial mean, times 0.01 (keys ``net.{k}``).

    Returns (forward): ``(axisangle [B, 3], translation [B, 3])`` of the first of the two predicted
    transforms (the one the reference uses for a frame pair).
    """

    def __init__(self, cin: int):
        super().__init__()
        self.net = nn.ModuleList(
            [
                nn.Conv2d(cin, 256, 1),
                nn.Conv2d(256, 256, 3, 1, 1),
                nn.Conv2d(256, 256, 3, 1, 1),
                nn.Conv2d(256, 12, 1),
            ]
        )

    def forward(self, feats: list[torch.Tensor]):
        x = feats[-1]
        for k, conv in enumerate(self.net):
            x = conv(x)
            if k < len(self.net) - 1:
                x = F.relu(x)
        x = 0.01 * x.mean((2, 3)).view(-1, 2, 6)
        return x[:, 0, :3], x[:, 0, 3:]


# --- whole networks ---------------------------------------------------------------------------------


class DepthNet(nn.Module):
    """`ResnetEncoder` + `DepthDecoder`: ``[B, 3, H, W]`` in [0, 1] -> disparities per scale.

    The reference checkpoints keep the two halves in separate files; their keys are those of
    ``state_numpy(net.encoder)`` and ``state_numpy(net.decoder)``.
    """

    def __init__(self, num_layers: int = 18, scales=(0, 1, 2, 3)):
        super().__init__()
        self.encoder = ResnetEncoder(num_layers, num_images=1)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, scales)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class PoseNet(nn.Module):
    """Pose `ResnetEncoder` (two frames) + `PoseDecoder`: ``[B, 6, H, W]`` -> (axisangle, translation)."""

    def __init__(self, num_layers: int = 18):
        super().__init__()
        self.encoder = ResnetEncoder(num_layers, num_images=2)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1])

    def forward(self, pair):
        return self.decoder(self.encoder(pair))


# --- test helpers: weights and layouts --------------------------------------------------------------


def randomize_(module: nn.Module, seed: int) -> None:
    """Random weights *and* BN statistics (so the BN conversion is actually exercised); sets eval."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.2 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            elif isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    module.eval()


def state_numpy(*modules: nn.Module) -> dict[str, np.ndarray]:
    """Merged ``state_dict`` of the modules as NumPy arrays (incl. ``num_batches_tracked``)."""
    out = {}
    for m in modules:
        out.update({k: v.detach().numpy() for k, v in m.state_dict().items()})
    return out


def nchw(x: np.ndarray) -> torch.Tensor:
    """``[B, H, W, C]`` NumPy -> ``[B, C, H, W]`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t: torch.Tensor) -> np.ndarray:
    """``[B, C, H, W]`` tensor -> ``[B, H, W, C]`` NumPy."""
    return t.detach().numpy().transpose(0, 2, 3, 1)


# --- benchmark: one monocular training step ---------------------------------------------------------

SSIM_WEIGHT = 0.85  # photometric = 0.85 * SSIM + 0.15 * L1 (paper, Sec. 3)
SMOOTHNESS_WEIGHT = 1e-3
MIN_DEPTH, MAX_DEPTH = 0.01, 10.0  # disparity -> depth range of the paper's KITTI setting
LEARNING_RATE = 1e-4


def rotation(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: ``[B, 3]`` axis-angle -> ``[B, 3, 3]`` rotation matrix."""
    angle = axis_angle.norm(dim=1, keepdim=True)
    axis = axis_angle / (angle + 1e-7)
    c, s = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], 1).view(-1, 3, 3)
    eye = torch.eye(3).expand_as(k)
    return eye + s * k + (1 - c) * (k @ k)


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``(1 - SSIM) / 2`` over reflection-padded 3x3 windows, ``[B, C, H, W]``."""
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mx, my = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sx = F.avg_pool2d(x * x, 3, 1) - mx**2
    sy = F.avg_pool2d(y * y, 3, 1) - my**2
    sxy = F.avg_pool2d(x * y, 3, 1) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    n = (2 * mx * my + c1) * (2 * sxy + c2)
    d = (mx**2 + my**2 + c1) * (sx + sy + c2)
    return torch.clamp((1 - n / d) / 2, 0, 1)


def photometric(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` pair -> ``[B, 1, H, W]`` weighted SSIM + L1 error."""
    ssim = ssim_loss(pred, target).mean(1, keepdim=True)
    l1 = (pred - target).abs().mean(1, keepdim=True)
    return SSIM_WEIGHT * ssim + (1 - SSIM_WEIGHT) * l1


class MonoTrainStep:
    """One M training step (frames 0, -1, +1) at full-resolution multi-scale, Adam 1e-4.

    Calling the object runs forward, loss, backward and the optimizer update on fixed random frames
    and returns the loss. Only the compute pattern matters (the same convolutions, upsampling and
    per-pixel loss work as md2tf's step), so that timings compare like with like.
    """

    def __init__(self, batch: int, height: int, width: int):
        self.depth, self.pose = DepthNet(), PoseNet()
        params = list(self.depth.parameters()) + list(self.pose.parameters())
        self.opt = torch.optim.Adam(params, LEARNING_RATE)
        self.h, self.w = height, width
        k = torch.tensor(
            [[0.58 * width, 0, 0.5 * width], [0, 1.92 * height, 0.5 * height], [0, 0, 1.0]]
        )
        self.K = k.expand(batch, 3, 3)
        v, u = torch.meshgrid(
            torch.arange(height, dtype=torch.float32),
            torch.arange(width, dtype=torch.float32),
            indexing="ij",
        )
        self.pix = torch.stack([u.flatten(), v.flatten(), torch.ones(height * width)], 0).expand(
            batch, 3, -1
        )
        g = torch.Generator().manual_seed(0)
        # I0, I-1, I+1
        self.frames = [torch.rand(batch, 3, height, width, generator=g) for _ in range(3)]

    def _warp(self, src, depth, R, t):
        b = src.shape[0]
        cam = (torch.linalg.inv(self.K) @ self.pix) * depth.view(b, 1, -1)
        p = self.K @ (R @ cam + t[:, :, None])
        uv = p[:, :2] / (p[:, 2:3] + 1e-7)
        u = uv[:, 0] / (self.w - 1) * 2 - 1
        v = uv[:, 1] / (self.h - 1) * 2 - 1
        grid = torch.stack([u, v], -1).view(b, self.h, self.w, 2)
        return F.grid_sample(src, grid, padding_mode="border", align_corners=True)

    def _nets(self):
        """Depth net on the target, pose net on the (-1, 0) and (0, +1) pairs."""
        target, prev, nxt = self.frames
        disps = self.depth(target)
        poses = [self.pose(torch.cat([prev, target], 1)), self.pose(torch.cat([target, nxt], 1))]
        return disps, poses

    def nets_fwd_bwd(self) -> float:
        """Forward and backward of the two networks alone (the sum of their outputs as the loss, no
        update): the step without the photometric loss and Adam."""
        disps, poses = self._nets()
        total = sum(d.sum() for d in disps) + sum(a.sum() + t.sum() for a, t in poses)
        self.opt.zero_grad()
        total.backward()
        return float(total.detach())

    def __call__(self) -> float:
        target, prev, nxt = self.frames
        disps, poses = self._nets()
        total = 0.0
        for s, disp in enumerate(disps):
            disp = F.interpolate(disp, (self.h, self.w), mode="bilinear", align_corners=False)
            depth = 1.0 / (MIN_DEPTH + (MAX_DEPTH - MIN_DEPTH) * disp)
            errors, identity = [], []
            for (aa, tr), src, invert in zip(poses, (prev, nxt), (True, False), strict=True):
                R = rotation(aa)
                t = tr[:, :, None]
                if invert:
                    R = R.transpose(1, 2)
                    t = -(R @ t)
                errors.append(photometric(self._warp(src, depth, R, t[:, :, 0]), target))
                identity.append(photometric(src, target) + 1e-5 * torch.randn_like(errors[-1]))
            loss = torch.cat(identity + errors, 1).min(1)[0].mean()
            d = disps[s] / (disps[s].mean((2, 3), keepdim=True) + 1e-7)
            img = F.interpolate(target, scale_factor=0.5**s, mode="area") if s else target
            gx = (d[..., :, :-1] - d[..., :, 1:]).abs() * torch.exp(
                -(img[..., :, :-1] - img[..., :, 1:]).abs().mean(1, True)
            )
            gy = (d[..., :-1, :] - d[..., 1:, :]).abs() * torch.exp(
                -(img[..., :-1, :] - img[..., 1:, :]).abs().mean(1, True)
            )
            total = total + loss + SMOOTHNESS_WEIGHT * (gx.mean() + gy.mean()) / 2**s
        total = total / len(disps)
        self.opt.zero_grad()
        total.backward()
        self.opt.step()
        return float(total.detach())
