"""The Monodepth2 architecture in PyTorch, written from the paper's description for side-by-side timing.

Used only by ``scripts/benchmark.py --compare-torch`` (needs the optional ``torch`` extra). This is an
independent implementation of the published architecture (ResNet18 U-Net depth net, ResNet pose net,
SSIM + L1 photometric loss with per-pixel minimum and auto-masking); it is not, and does not import,
the official code. Only the compute pattern matters here: the same convolutions, the same
upsampling, the same per-pixel loss work, so that timings compare like with like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet18Trunk(nn.Module):
    """ResNet18 without the classifier; returns features at 1/2, 1/4, 1/8, 1/16, 1/32."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        widths = [64, 64, 128, 256, 512]
        self.stages = nn.ModuleList()
        for i in range(1, 5):
            stride = 1 if i == 1 else 2
            self.stages.append(nn.Sequential(BasicBlock(widths[i - 1], widths[i], stride),
                                             BasicBlock(widths[i], widths[i], 1)))

    def forward(self, x):
        feats = [self.stem((x - 0.45) / 0.225)]
        y = F.max_pool2d(feats[0], 3, 2, 1)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return feats


class ReflectConv(nn.Module):
    def __init__(self, cin: int, cout: int, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3)
        self.act = act

    def forward(self, x):
        y = self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        return F.elu(y) if self.act else y


class DepthDecoder(nn.Module):
    def __init__(self, enc=(64, 64, 128, 256, 512), dec=(16, 32, 64, 128, 256), scales=(0, 1, 2, 3)):
        super().__init__()
        self.scales = scales
        self.up0 = nn.ModuleList()
        self.up1 = nn.ModuleList()
        for i in range(4, -1, -1):
            cin = enc[-1] if i == 4 else dec[i + 1]
            self.up0.append(ReflectConv(cin, dec[i]))
            self.up1.append(ReflectConv(dec[i] + (enc[i - 1] if i > 0 else 0), dec[i]))
        self.heads = nn.ModuleList([ReflectConv(dec[s], 1, act=False) for s in scales])

    def forward(self, feats):
        x = feats[-1]
        out = {}
        for k, i in enumerate(range(4, -1, -1)):
            x = F.interpolate(self.up0[k](x), scale_factor=2, mode="nearest")
            if i > 0:
                x = torch.cat([x, feats[i - 1]], 1)
            x = self.up1[k](x)
            if i in self.scales:
                out[i] = torch.sigmoid(self.heads[self.scales.index(i)](x))
        return [out[s] for s in self.scales]


class DepthNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = ResNet18Trunk(3)
        self.decoder = DepthDecoder()

    def forward(self, x):
        return self.decoder(self.encoder(x))


class PoseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = ResNet18Trunk(6)
        self.squeeze = nn.Conv2d(512, 256, 1)
        self.conv1 = nn.Conv2d(256, 256, 3, 1, 1)
        self.conv2 = nn.Conv2d(256, 256, 3, 1, 1)
        self.out = nn.Conv2d(256, 12, 1)

    def forward(self, pair):
        x = self.encoder(pair)[-1]
        x = F.relu(self.conv2(F.relu(self.conv1(F.relu(self.squeeze(x))))))
        x = 0.01 * self.out(x).mean((2, 3)).view(-1, 2, 6)
        return x[:, 0, :3], x[:, 0, 3:]


def rotation(axis_angle):
    angle = axis_angle.norm(dim=1, keepdim=True)
    axis = axis_angle / (angle + 1e-7)
    c, s = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], 1).view(-1, 3, 3)
    eye = torch.eye(3).expand_as(k)
    return eye + s * k + (1 - c) * (k @ k)


def ssim_loss(x, y):
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mx, my = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sx = F.avg_pool2d(x * x, 3, 1) - mx**2
    sy = F.avg_pool2d(y * y, 3, 1) - my**2
    sxy = F.avg_pool2d(x * y, 3, 1) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    n = (2 * mx * my + c1) * (2 * sxy + c2)
    d = (mx**2 + my**2 + c1) * (sx + sy + c2)
    return torch.clamp((1 - n / d) / 2, 0, 1)


def photometric(pred, target):
    return 0.85 * ssim_loss(pred, target).mean(1, keepdim=True) + 0.15 * (pred - target).abs().mean(1, keepdim=True)


class MonoTrainStep:
    """One M training step (frames 0, -1, +1) at full-resolution multi-scale, Adam 1e-4."""

    def __init__(self, batch: int, height: int, width: int):
        self.depth, self.pose = DepthNet(), PoseNet()
        self.opt = torch.optim.Adam(list(self.depth.parameters()) + list(self.pose.parameters()), 1e-4)
        self.h, self.w = height, width
        k = torch.tensor([[0.58 * width, 0, 0.5 * width], [0, 1.92 * height, 0.5 * height], [0, 0, 1.0]])
        self.K = k.expand(batch, 3, 3)
        v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                              indexing="ij")
        self.pix = torch.stack([u.flatten(), v.flatten(), torch.ones(height * width)], 0).expand(batch, 3, -1)
        g = torch.Generator().manual_seed(0)
        self.frames = [torch.rand(batch, 3, height, width, generator=g) for _ in range(3)]  # I0, I-1, I+1

    def _warp(self, src, depth, R, t):
        b = src.shape[0]
        cam = (torch.linalg.inv(self.K) @ self.pix) * depth.view(b, 1, -1)
        p = self.K @ (R @ cam + t[:, :, None])
        uv = p[:, :2] / (p[:, 2:3] + 1e-7)
        u = uv[:, 0] / (self.w - 1) * 2 - 1
        v = uv[:, 1] / (self.h - 1) * 2 - 1
        grid = torch.stack([u, v], -1).view(b, self.h, self.w, 2)
        return F.grid_sample(src, grid, padding_mode="border", align_corners=True)

    def __call__(self):
        target, prev, nxt = self.frames
        disps = self.depth(target)
        poses = [self.pose(torch.cat([prev, target], 1)), self.pose(torch.cat([target, nxt], 1))]
        total = 0.0
        for s, disp in enumerate(disps):
            disp = F.interpolate(disp, (self.h, self.w), mode="bilinear", align_corners=False)
            depth = 1.0 / (0.01 + (10.0 - 0.01) * disp)
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
            gx = (d[..., :, :-1] - d[..., :, 1:]).abs() * torch.exp(-(img[..., :, :-1] - img[..., :, 1:]).abs().mean(1, True))
            gy = (d[..., :-1, :] - d[..., 1:, :]).abs() * torch.exp(-(img[..., :-1, :] - img[..., 1:, :]).abs().mean(1, True))
            total = total + loss + 1e-3 * (gx.mean() + gy.mean()) / 2**s
        total = total / len(disps)
        self.opt.zero_grad()
        total.backward()
        self.opt.step()
        return float(total.detach())
