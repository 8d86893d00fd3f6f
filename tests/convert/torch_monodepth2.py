"""A PyTorch Monodepth2-layout model, written for the tests from the architecture description.

Only the parameter *names* follow the reference checkpoints (facts sheet 1.6): ``encoder.conv1``,
``encoder.layer2.0.downsample.0``, ``decoder.{k}.conv.conv``, ``decoder.{10+s}.conv``, ``net.{k}``.
The forward passes are written from the paper's Table 5 and torchvision's ResNet description, NCHW.
Import only after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
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


class Bottle(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
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


class Trunk(nn.Module):
    def __init__(self, num_layers, in_ch):
        super().__init__()
        block, counts = {18: (Basic, [2, 2, 2, 2]), 34: (Basic, [3, 4, 6, 3]),
                         50: (Bottle, [3, 4, 6, 3])}[num_layers]
        self.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for stage, (planes, n) in enumerate(zip([64, 128, 256, 512], counts), start=1):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if stage > 1 and j == 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, 1000)  # unused, present in the state dict like torchvision's

    def features(self, x):
        x = (x - 0.45) / 0.225
        f = [F.relu(self.bn1(self.conv1(x)))]
        x = F.max_pool2d(f[0], 3, 2, 1)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
            f.append(x)
        return f


class Encoder(nn.Module):
    def __init__(self, num_layers=18, num_images=1):
        super().__init__()
        self.encoder = Trunk(num_layers, 3 * num_images)

    def forward(self, x):
        return self.encoder.features(x)


class Pad3x3(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 3)

    def forward(self, x):
        return self.conv(self.pad(x))


class Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = Pad3x3(cin, cout)

    def forward(self, x):
        return F.elu(self.conv(x))


class Decoder(nn.Module):
    def __init__(self, enc_ch, scales=(0, 1, 2, 3)):
        super().__init__()
        dec = [16, 32, 64, 128, 256]
        mods = []
        for i in range(4, -1, -1):
            mods.append(Block(enc_ch[-1] if i == 4 else dec[i + 1], dec[i]))
            mods.append(Block(dec[i] + (enc_ch[i - 1] if i > 0 else 0), dec[i]))
        mods += [Pad3x3(dec[s], 1) for s in scales]
        self.decoder = nn.ModuleList(mods)
        self.scales = scales

    def forward(self, feats):
        x, out = feats[-1], {}
        for i in range(4, -1, -1):
            x = F.interpolate(self.decoder[2 * (4 - i)](x), scale_factor=2, mode="nearest")
            if i > 0:
                x = torch.cat([x, feats[i - 1]], 1)
            x = self.decoder[2 * (4 - i) + 1](x)
            if i in self.scales:
                out[i] = torch.sigmoid(self.decoder[10 + i](x))
        return [out[s] for s in self.scales]


class PoseHead(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.net = nn.ModuleList([nn.Conv2d(cin, 256, 1), nn.Conv2d(256, 256, 3, 1, 1),
                                  nn.Conv2d(256, 256, 3, 1, 1), nn.Conv2d(256, 12, 1)])

    def forward(self, feats):
        x = feats[-1]
        for k, conv in enumerate(self.net):
            x = conv(x)
            if k < 3:
                x = F.relu(x)
        x = 0.01 * x.mean(3).mean(2).view(-1, 2, 6)
        return x[:, 0, :3], x[:, 0, 3:]


def randomize_(module: nn.Module, seed: int) -> None:
    """Random weights *and* BN statistics (so the BN conversion is actually exercised)."""
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
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)
