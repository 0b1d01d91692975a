"""The fbnet-family supernet: the builder's blocks, run with slices of shared master weights.

Every forward walks ``space.layers(arch)`` — the one walker — so a path computes exactly the
network ``build_model(space, arch)`` builds: the same block modules (a *template* per layer
shape and op, made by the builder), run with ``torch.func.functional_call`` on parameters
sliced from a *master*: the builder's block at the layer's widest shape.  Slicing keeps the
leading channels of every dimension and the centre of every kernel, so ``ir_k3_e1`` at 16
channels is a corner of ``ir_k5_e6`` at the stage's widest width (OFA's weight
entanglement).  ``extract(arch)`` copies those slices into a plain ``Net``.

Which candidates share a master: at every searchable layer, all ``ir`` candidates share
one block with the largest kernel and expansion of any candidate (OFA's weight
entanglement); ``skip`` is the identity where the layer keeps its shape and owns a 1x1
projection where it does not.

* residual layers (stride 1, Cin = Cout): the shared block's last BatchNorm scale starts at
  zero (Goyal et al., 2017), so every sampled residual block starts as the identity.
  Measured (fbnet-small, 400 steps, stage-first layers fixed to ``ir_k3_e1``): train accuracy
  71% with it, 49% without;
* stage-first layers (stride or channels change, no identity path): their candidates compute
  features of different kinds, and sampling them uniformly from the start keeps the
  supernet near chance (12.7% for independent masters, 33% shared), so ``forward_anchored``
  distils them into the largest candidate (37% after 400 steps; see ``search.fbnet``).

BatchNorm statistics live in the templates and are re-estimated per path before a path is
evaluated (``calibrate``): one set of running statistics cannot serve every path.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import torch
from torch import nn
from torch.func import functional_call

from hwnas.errors import HwnasError
from hwnas.space import LayerInfo, SearchSpace, build_model, layer_module, parse_key
from hwnas.space.blocks import IRBlock, zero_init_residual
from hwnas.space.builder import Net, module_name

FIXED = ("stem", "head", "pool", "fc")


class SupernetError(HwnasError):
    """A supernet asked for a space or architecture it cannot serve."""


def widest_arch(space: SearchSpace, op: str) -> list[int]:
    """Every stage at its widest width, every layer running ``op``."""
    return [len(c) - 1 if c.kind == "width" else c.options.index(op) for c in space.choices]


def is_residual_position(info: LayerInfo) -> bool:
    """A layer that keeps its shape at the widest widths (so ``skip`` is the identity)."""
    return info.stride == 1 and info.cin == info.cout


def slice_like(master: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The leading corner of ``master`` in every dimension, the centre of a conv kernel's."""
    idx = []
    for d, (big, small) in enumerate(zip(master.shape, shape)):
        if small > big:
            raise SupernetError(f"template dimension {d} ({small}) exceeds the master's ({big})")
        start = (big - small) // 2 if d >= 2 and master.dim() == 4 else 0
        idx.append(slice(start, start + small))
    return master[tuple(idx)]


class FBNetSupernet(nn.Module):
    """Master weights for every layer position and candidate group of an fbnet-family space."""

    def __init__(
        self, space: SearchSpace, share_stage_first: bool = True, identity_init: bool = True
    ):
        """``share_stage_first=False`` gives each stage-first candidate its own master and
        ``identity_init=False`` keeps the residual masters' default init: the ablations
        ``bench/supernet_training.py`` measures, not settings a search needs."""
        super().__init__()
        self.share_stage_first = share_stage_first
        if space.family != "fbnet":
            raise SupernetError(
                f"the FBNet supernet needs an fbnet-family space; {space.name} is {space.family}"
            )
        self.space = space
        op_choice = next(c for c in space.choices if c.kind == "op")
        self.ops = tuple(op_choice.options)
        self.specs = {op: parse_key(op) for op in self.ops}
        irs = [op for op in self.ops if isinstance(self.specs[op], IRBlock)]
        self.largest_ir = (
            max(
                irs,
                key=lambda o: (
                    self.specs[o].expansion,
                    self.specs[o].kernel,
                    -self.specs[o].groups,
                ),
            )
            if irs
            else None
        )
        self._cover = (
            IRBlock(
                max(self.specs[o].kernel for o in irs), max(self.specs[o].expansion for o in irs)
            )
            if irs
            else None
        )
        self.masters = nn.ModuleDict(self._build_masters(identity_init))
        self._templates: dict[tuple, nn.Module] = {}
        self.op_choice = {n: space.choice_index(f"{n}.op") for n in self.residual}
        self.width_choice = {
            n: space.choice_index(f"{n.split('.')[0]}.width") for n in self.residual
        }
        # per stage, the op choices of its residual layers (what depth sampling draws over)
        self.residual_slots: dict[str, list[int]] = {}
        for n, residual in self.residual.items():
            if residual:
                self.residual_slots.setdefault(n.split(".")[0], []).append(self.op_choice[n])

    def _build_masters(self, identity_init: bool) -> dict[str, nn.Module]:
        """One master per layer position and candidate group, each built at its widest
        (fixed layers: the layer itself); sets ``layer_names`` and ``residual``."""
        space = self.space
        widest = {op: space.layers(widest_arch(space, op)) for op in self.ops}
        first = widest[self.ops[0]]
        self.layer_names = [info.name for info in first]
        self.residual = {}
        masters: dict[str, nn.Module] = OrderedDict()
        for j, info in enumerate(first):
            if info.name in FIXED:
                masters[module_name(info.name)] = layer_module(info)
                continue
            self.residual[info.name] = is_residual_position(info)
            for op in self.ops:
                key = self._master_key(info.name, op)
                if key not in masters:
                    own = widest[op][j]
                    # shared: an ir block with the largest kernel and expansion of any candidate
                    if self._shared(info.name, op):
                        masters[key] = layer_module(dataclasses.replace(own, spec=self._cover))
                        if identity_init:
                            zero_init_residual(masters[key])  # residual positions only
                    else:
                        masters[key] = layer_module(own)
        return masters

    # ------------------------------------------------------------------ structure
    def _shared(self, layer: str, op: str) -> bool:
        return isinstance(self.specs[op], IRBlock) and (
            self.share_stage_first or self.residual[layer]
        )

    def _master_key(self, layer: str, op: str) -> str:
        if layer in FIXED:
            return module_name(layer)
        return module_name(layer) + "__" + ("ir" if self._shared(layer, op) else op)

    def master(self, info: LayerInfo) -> nn.Module:
        return self.masters[self._master_key(info.name, info.spec.key())]

    def template(self, info: LayerInfo) -> nn.Module:
        """The builder's module for this layer (its own parameters unused; its BatchNorm
        buffers hold this layer shape's running statistics)."""
        t = self._templates.get(info.key + (info.name,))
        if t is None:
            t = layer_module(info)
            for p in t.parameters():
                p.requires_grad_(False)
            t.train(self.training)
            device = next(self.masters.parameters()).device
            if device.type != "cpu":  # on the accelerator the masters are on
                t.to(device)
            self._templates[info.key + (info.name,)] = t
        return t

    def train(self, mode: bool = True):
        super().train(mode)
        for t in self._templates.values():
            t.train(mode)
        return self

    def _apply(self, fn, *args, **kwargs):
        """``.to(device)`` (and every other ``_apply``) also moves the templates made so far:
        they are kept outside the module tree, and their BatchNorm buffers run in the path."""
        super()._apply(fn, *args, **kwargs)
        for t in self._templates.values():
            t._apply(fn, *args, **kwargs)
        return self

    def params_for(self, info: LayerInfo) -> dict[str, torch.Tensor]:
        """The template's parameters as slices of the master's (matched in order)."""
        t, m = self.template(info), self.master(info)
        tp, mp = list(t.named_parameters()), list(m.parameters())
        if tp and len(tp) != len(mp):  # no parameters: an identity skip at these widths
            raise SupernetError(
                f"{info.name}: {info.spec.key()} has {len(tp)} parameters, its master {len(mp)}"
            )
        return {name: slice_like(w, p.shape) for (name, p), w in zip(tp, mp)}

    def run_layer(self, info: LayerInfo, x: torch.Tensor) -> torch.Tensor:
        t = self.template(info)
        state = {**dict(t.named_buffers()), **self.params_for(info)}
        return functional_call(t, state, (x,))

    # ------------------------------------------------------------------ forward
    def layers(self, arch) -> list[LayerInfo]:
        return self.space.layers(arch)

    def forward(
        self,
        x: torch.Tensor,
        arch,
        gates: list[torch.Tensor] | None = None,
        gate_branch: bool = False,
    ) -> torch.Tensor:
        """The path ``arch``; with ``gates`` (one scalar per choice point, 1 in the forward
        pass: a straight-through Gumbel sample) each layer's output is multiplied by its op
        and width gates, so their gradients reach θ.  ``gate_branch``: where the layer keeps
        its shape, only the residual branch is gated (``x + g·(y − x)``), so the gradient
        measures the candidate's own contribution rather than the shared identity."""
        for info in self.layers(arch):
            y = self.run_layer(info, x)
            if gates is not None and info.name in self.op_choice:
                g = gates[self.op_choice[info.name]] * gates[self.width_choice[info.name]]
                keeps_shape = info.stride == 1 and info.cin == info.cout
                y = x + g * (y - x) if gate_branch and keeps_shape else y * g
            x = y
        return x

    def forward_mixed(
        self, x: torch.Tensor, arch, op_weights: list[torch.Tensor], width_gates: list | None = None
    ) -> torch.Tensor:
        """FBNet's soft mode: at every searchable layer the weighted sum of all candidates
        (``op_weights[choice]``) at the widths of ``arch``, times the layer's width gate."""
        for info in self.layers(arch):
            if info.name not in self.op_choice:
                x = self.run_layer(info, x)
                continue
            w = op_weights[self.op_choice[info.name]]
            out = 0
            for k, op in enumerate(self.ops):
                out = out + w[k] * self.run_layer(dataclasses.replace(info, spec=self.specs[op]), x)
            x = out if width_gates is None else out * width_gates[self.width_choice[info.name]]
        return x

    def anchor_of(self, info: LayerInfo) -> LayerInfo:
        """The same layer running the anchor candidate (the largest ``ir``)."""
        return dataclasses.replace(info, spec=self.specs[self.largest_ir])

    def forward_anchored(
        self,
        x: torch.Tensor,
        arch,
        student_p: float = 0.0,
        gen: torch.Generator | None = None,
        skip_in_path: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A training pass for ``arch``.  At each stage-first layer whose candidate is not the
        anchor, the path runs the anchor and ``arch``'s candidate learns to reproduce the
        anchor's output from the same input (block-wise feature distillation, as DNA); with
        probability ``student_p`` (drawn from ``gen``) the candidate itself runs in the path
        instead, so the layers after it learn its features too.  ``skip_in_path``: a
        stage-first ``skip`` (a 1x1 projection, which cannot imitate the anchor) always runs
        in the path, undistilled.  Every other layer runs ``arch``.  Returns the logits and
        the summed distillation MSE."""
        mse = x.new_zeros(())
        for info in self.layers(arch):
            if (
                self._distilled(info)
                and not (skip_in_path and info.spec.key() == "skip")
                and not (student_p > 0 and float(torch.rand((), generator=gen)) < student_p)
            ):
                student = self.run_layer(info, x.detach())
                x = self.run_layer(self.anchor_of(info), x)
                mse = mse + torch.nn.functional.mse_loss(student, x.detach())
            else:
                x = self.run_layer(info, x)
        return x, mse

    def _distilled(self, info: LayerInfo) -> bool:
        """A stage-first layer running a candidate other than the anchor (with weights)."""
        return (
            info.name in self.residual
            and not self.residual[info.name]
            and info.spec.key() != self.largest_ir
            and bool(self.params_for(info))
        )

    # ------------------------------------------------------------------ export
    def extract(self, arch) -> Net:
        """``build_model(space, arch)`` holding this path's weights and BN statistics."""
        net = build_model(self.space, arch)
        for info, module in zip(self.layers(arch), net.children()):
            params = self.params_for(info)
            buffers = dict(self.template(info).named_buffers())
            module.load_state_dict(
                {
                    **{k: v.detach().clone() for k, v in params.items()},
                    **{k: v.clone() for k, v in buffers.items()},
                }
            )
        return net.train(self.training)

    def path_modules(self, arch) -> list[nn.Module]:
        return [self.template(info) for info in self.layers(arch)]


__all__ = ["FBNetSupernet", "SupernetError", "widest_arch", "slice_like"]
