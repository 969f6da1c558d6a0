"""Eager forward speed of the generated ResNet-18 against a hand-written one.

The reference is torchvision's ``resnet18`` when torchvision is installed, otherwise ``ReferenceResNet18``
below: a line-for-line torchvision-style ResNet-18 (in-place ReLU, ``out += identity``), written by hand.
Both get the same weights (their state_dicts have the same keys) and must agree on the output; then they
run interleaved (A B A B ...) in one process, torch at one thread, and the script prints the median time
of each, the ratio reference / generated (>= 0.97 is the target: 1.0 = as fast), and the machine's load
average before and after, since other processes' CPU use skews both timings.

    python bench/bench_torch_forward.py [--rounds 15] [--batch 1] [--size 224]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from cnnspec.api import load

ROOT = Path(__file__).parents[1]


# ----------------------------------------------------------------------------------------------------
# The hand-written reference (used when torchvision is not installed)
# ----------------------------------------------------------------------------------------------------
class ReferenceBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ReferenceResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(64, 64, 1)
        self.layer2 = self._stage(64, 128, 2)
        self.layer3 = self._stage(128, 256, 2)
        self.layer4 = self._stage(256, 512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    @staticmethod
    def _stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        return nn.Sequential(ReferenceBasicBlock(inplanes, planes, stride, downsample),
                             ReferenceBasicBlock(planes, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def reference() -> tuple[str, nn.Module]:
    try:
        from torchvision.models import resnet18  # type: ignore[import-not-found]
    except ImportError:
        return "hand-written torchvision-style ResNet-18 (bench/bench_torch_forward.py)", ReferenceResNet18()
    return "torchvision.models.resnet18", resnet18(weights=None)


# ----------------------------------------------------------------------------------------------------
def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def time_once(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    generated = load(ROOT / "specs" / "resnet18.yaml").to_torch().eval()
    ref_name, ref = reference()
    ref.load_state_dict(generated.state_dict(), strict=True)
    ref.eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.inference_mode():
        assert torch.allclose(generated(x), ref(x), atol=1e-4), "the two models disagree"
        for _ in range(3):  # warm-up
            generated(x), ref(x)

    before = loadavg()
    times: dict[str, list[float]] = {"generated": [], "reference": []}
    for round_ in range(args.rounds):
        order = ("generated", "reference") if round_ % 2 == 0 else ("reference", "generated")
        for which in order:
            times[which].append(time_once(generated if which == "generated" else ref, x))
    after = loadavg()

    gen_ms = statistics.median(times["generated"]) * 1e3
    ref_ms = statistics.median(times["reference"]) * 1e3
    print(f"resnet18 eager forward, batch {args.batch}x3x{args.size}x{args.size}, torch {torch.__version__}, "
          f"1 thread, {args.rounds} interleaved rounds")
    print(f"reference: {ref_name}")
    print(f"  generated  median {gen_ms:8.2f} ms   (min {min(times['generated']) * 1e3:.2f})")
    print(f"  reference  median {ref_ms:8.2f} ms   (min {min(times['reference']) * 1e3:.2f})")
    print(f"  ratio reference/generated = {ref_ms / gen_ms:.3f}  (target >= 0.97)")
    print(f"  load average before: {before}   after: {after}   (2 cores here; other processes skew both)")


if __name__ == "__main__":
    main()
