"""Generated modules train, and their train/eval behaviour is PyTorch's: dropout, batch norm statistics,
stochastic depth."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnspec.api import load

ROOT = Path(__file__).parents[1]
TINY = """\
name: tiny
params: {num_classes: 3, drop: 0.5}
input: [2, 8, 8]
blocks:
  res:
    args: {p: float}
    layers:
      - residual:
          body:
            - conv: {out: 4, kernel: 3, padding: 1, name: conv}
            - stochastic_depth: {p: $p, mode: batch, name: sd}
layers:
  - conv: {out: 4, kernel: 3, padding: 1, name: stem}
  - batchnorm: {name: bn}
  - res: {p: 1.0, name: always_dropped}
  - res: {p: 0.0, name: kept}
  - global_avgpool: {name: pool}
  - flatten
  - dropout: {p: $drop, name: drop}
  - linear: {out: $num_classes, name: head}
"""

torch.set_num_threads(2)


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_twenty_adam_steps_lower_the_loss(name: str) -> None:
    torch.manual_seed(0)
    model = load(ROOT / "specs" / f"{name}.yaml", input_shape=(3, 32, 32), num_classes=10).to_torch()
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1 and min(losses[-5:]) < min(losses[:5]), losses


@pytest.fixture()
def tiny(tmp_path: Path) -> torch.nn.Module:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    torch.manual_seed(0)
    return load(spec).to_torch()


def test_eval_mode_is_deterministic_and_train_mode_drops(tiny: torch.nn.Module) -> None:
    x = torch.randn(16, 2, 8, 8)
    tiny.eval()
    with torch.no_grad():
        assert torch.equal(tiny(x), tiny(x))
        tiny.train()
        torch.manual_seed(1)
        first = tiny(x)
        second = tiny(x)
    assert not torch.equal(first, second)  # dropout draws a new mask each call
    assert tiny.drop.p == 0.5


def test_batchnorm_updates_statistics_only_in_train_mode(tiny: torch.nn.Module) -> None:
    x = torch.randn(4, 2, 8, 8) + 3.0
    bn = tiny.bn
    with torch.no_grad():
        tiny.eval()
        tiny(x)
        assert torch.equal(bn.running_mean, torch.zeros(4)) and int(bn.num_batches_tracked) == 0
        tiny.train()
        tiny(x)
    assert int(bn.num_batches_tracked) == 1
    assert not torch.equal(bn.running_mean, torch.zeros(4))


def test_stochastic_depth_drops_the_branch_in_train_mode_only(tiny: torch.nn.Module) -> None:
    block = tiny.always_dropped  # p = 1: the residual branch is always dropped while training
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        block.train()
        assert torch.equal(block(x), x)
        block.eval()  # an identity at inference: out = conv(x) + x
        assert torch.allclose(block(x), block.conv(x) + x)
        tiny.kept.train()  # p = 0: never dropped
        assert torch.allclose(tiny.kept(x), tiny.kept.conv(x) + x)
