"""Single-path weight-sharing supernet over the mnasnet family (SPOS/TuNAS-style), for ranking.

Weight sharing, kept simple: every layer position (walker slot) owns one module per op type
(conv, dwconv, mbconv) sized for the largest shape that position can take.  A sampled layer
uses a slice of it: the first Cin/Cout (or expanded) channels, the centre k×k of the k_max
kernel, the first r SE channels; mbconv e3 uses the first half of e6's expanded channels.
Batch normalisation always uses the batch's statistics (no running averages: one set of
running statistics cannot serve every width), also when scoring.  Uniform sampling trains
every choice evenly (SPOS); an architecture's score is its validation accuracy with the
inherited weights, no fine-tuning.
"""

from __future__ import annotations

import itertools
import math
import random

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.accelerator import Accelerator
from hwnas.space import LayerInfo, SearchSpace, layer_module
from hwnas.space.blocks import MnasBlock
from hwnas.space.builder import module_name
from hwnas.train import cosine_lr, nhwc


class SlicedConvBN(nn.Module):
    """k_max×k_max conv (dense or depthwise) + BN affine; forwards any smaller slice."""

    def __init__(self, cin: int, cout: int, k: int, depthwise: bool = False):
        super().__init__()
        self.k, self.depthwise = k, depthwise
        self.weight = nn.Parameter(torch.empty(cout, 1 if depthwise else cin, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.gamma = nn.Parameter(torch.ones(cout))
        self.beta = nn.Parameter(torch.zeros(cout))

    def forward(
        self, x: torch.Tensor, cout: int, k: int, stride: int = 1, relu: bool = True
    ) -> torch.Tensor:
        cin = x.shape[1]
        o = (self.k - k) // 2
        if self.depthwise:
            cout = cin
            w = self.weight[:cin, :, o : o + k, o : o + k]
        else:
            w = self.weight[:cout, :cin, o : o + k, o : o + k]
        y = F.conv2d(x, w, None, stride, k // 2, groups=cin if self.depthwise else 1)
        y = F.batch_norm(y, None, None, self.gamma[:cout], self.beta[:cout], training=True)
        return F.relu(y) if relu else y


class SlicedSE(nn.Module):
    """Squeeze-excite with the first ``c`` channels and ``r`` reduced channels."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Linear(channels, reduced)
        self.expand = nn.Linear(reduced, channels)

    def forward(self, x: torch.Tensor, r: int) -> torch.Tensor:
        c = x.shape[1]
        s = x.mean((2, 3))
        s = F.relu(F.linear(s, self.reduce.weight[:r, :c], self.reduce.bias[:r]))
        s = torch.sigmoid(F.linear(s, self.expand.weight[:c, :r], self.expand.bias[:c]))
        return x * s[:, :, None, None]


def _se_reduced(info: LayerInfo) -> int:
    return max(1, int(info.cin * info.spec.se)) if info.spec.se else 0


class SharedLayer(nn.Module):
    """One walker slot: a conv, a dwconv and an mbconv branch, each at its slot's maximum."""

    def __init__(self, infos: list[LayerInfo]):
        super().__init__()
        ci = max(i.cin for i in infos)
        co = max(i.cout for i in infos)
        k = max(i.spec.kernel for i in infos)
        mid = max(i.cin * i.spec.expansion for i in infos)
        r = max([_se_reduced(i) for i in infos] + [1])
        self.conv = SlicedConvBN(ci, co, k)
        self.conv_se = SlicedSE(co, r)
        self.dw = SlicedConvBN(ci, ci, k, depthwise=True)
        self.dw_se = SlicedSE(ci, r)
        self.dw_pw = SlicedConvBN(ci, co, 1)
        self.mb_exp = SlicedConvBN(ci, mid, 1)
        self.mb_dw = SlicedConvBN(mid, mid, k, depthwise=True)
        self.mb_se = SlicedSE(mid, r)
        self.mb_pw = SlicedConvBN(mid, co, 1)

    def forward(self, x: torch.Tensor, info: LayerInfo) -> torch.Tensor:
        s, co, st = info.spec, info.cout, info.stride
        r = _se_reduced(info)
        if s.op == "conv":
            y = self.conv(x, co, s.kernel, st)
            y = self.conv_se(y, r) if r else y
        elif s.op == "dwconv":
            y = self.dw(x, 0, s.kernel, st)
            y = self.dw_se(y, r) if r else y
            y = self.dw_pw(y, co, 1, relu=False)
        else:
            y = self.mb_exp(x, info.cin * s.expansion, 1)
            y = self.mb_dw(y, 0, s.kernel, st)
            y = self.mb_se(y, r) if r else y
            y = self.mb_pw(y, co, 1, relu=False)
        return y + x if s.residual else y


class SharedHead(nn.Module):
    """The 1×1 head conv over whichever width the last block has."""

    def __init__(self, infos: list[LayerInfo]):
        super().__init__()
        self.conv = SlicedConvBN(max(i.cin for i in infos), infos[0].cout, 1)

    def forward(self, x: torch.Tensor, info: LayerInfo) -> torch.Tensor:
        return self.conv(x, info.cout, 1, info.stride)


def slot_infos(space: SearchSpace) -> dict[str, list[LayerInfo]]:
    """Every LayerInfo each slot can resolve to, over all values of its dependencies."""
    out: dict[str, list[LayerInfo]] = {}
    for slot in space.slots():
        seen = {}
        for combo in itertools.product(*(space.choices[d].options for d in slot.deps)):
            info = slot.resolve(combo)
            if info is not None:
                seen.setdefault(info.key, info)
        out[slot.name] = list(seen.values())
    return out


class SuperNet(nn.Module):
    """The mnasnet-family supernet; ``forward(x, arch)`` runs one path."""

    def __init__(self, space: SearchSpace, seed: int = 0):
        super().__init__()
        if space.family != "mnasnet":
            raise ValueError(
                f"the shared evaluator needs a mnasnet-family space, "
                f"not {space.name} ({space.family})"
            )
        self.space = space
        mods = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for name, infos in slot_infos(space).items():
                if not infos:
                    continue
                if isinstance(infos[0].spec, MnasBlock):
                    mods[module_name(name)] = SharedLayer(infos)
                elif len(infos) > 1:
                    mods[module_name(name)] = SharedHead(infos)
                else:
                    mods[module_name(name)] = layer_module(infos[0])
        self.layers = nn.ModuleDict(mods)

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        for info in self.space.layers(arch):
            m = self.layers[module_name(info.name)]
            x = m(x, info) if isinstance(m, (SharedLayer, SharedHead)) else m(x)
        return x


def train_supernet(
    net: SuperNet,
    splits,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    on_step=None,
    acc: Accelerator | None = None,
) -> list[float]:
    """SPOS training: a uniformly sampled path per step, SGD + cosine; per-epoch mean loss.
    Runs where ``net`` is (``acc``: its autocast and, for fp16, a grad scaler; the CPU runs
    plain float32)."""
    from hwnas.space import random_arch

    acc = acc or Accelerator.of(net)
    scaler = acc.scaler()
    rng = random.Random(seed)
    nhwc(net)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=4e-5)
    steps = max(1, epochs * math.ceil(len(splits.train) / batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr(1.0, s, steps))
    net.train()
    losses = []
    for epoch in range(epochs):
        total, n = 0.0, 0
        batches = splits.loader("train", batch_size, seed=seed + epoch, pin_memory=acc.pin_memory)
        for x, y in batches:
            x, y = acc.move(x, y)
            arch = random_arch(net.space, rng=rng)
            with acc.autocast():
                loss = F.cross_entropy(net(x, arch), y)
            opt.zero_grad(set_to_none=True)
            _step(net, opt, loss, scaler)
            sched.step()
            total, n = total + float(loss.detach()) * len(y), n + len(y)
            if on_step:
                on_step()
        losses.append(total / max(n, 1))
    return losses


def _step(net, opt, loss, scaler) -> None:
    """Backward, clip at 5 and step (through ``scaler`` for fp16)."""
    if scaler is None:
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        return
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    scaler.step(opt)
    scaler.update()


@torch.no_grad()
def path_accuracy(net: SuperNet, arch, loader) -> float:
    """Top-1 accuracy of one path with inherited weights (batch-statistics BN), where ``net``
    is."""
    correct, seen = 0, 0
    acc = Accelerator.of(net)
    for x, y in loader:
        x, y = acc.move(x, y)
        with acc.autocast():
            correct += int((net(x, arch).argmax(1) == y).sum())
        seen += len(y)
    return correct / seen if seen else float("nan")


__all__ = [
    "SuperNet",
    "SharedLayer",
    "SlicedConvBN",
    "SlicedSE",
    "slot_infos",
    "train_supernet",
    "path_accuracy",
]
