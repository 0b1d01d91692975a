"""Every block spec of the vocabulary: shapes, finite outputs, gradients, keys, registry."""

from __future__ import annotations

import itertools

import pytest
import torch

from hwnas.errors import HwnasError
from hwnas.space import FBNET_OPS, LayerInfo, build_block, parse_key
from hwnas.space.blocks import FC, IRBlock, MnasBlock, Pool, Stem, Head, register

MNAS_SPECS = [
    MnasBlock(op, k, e, se, res)
    for (op, e), k, se, res in itertools.product(
        [("conv", 1), ("dwconv", 1), ("mbconv", 3), ("mbconv", 6)],
        (3, 5),
        (0.0, 0.25),
        (False, True),
    )
]
ALL_SPECS = [parse_key(k) for k in FBNET_OPS] + MNAS_SPECS + [Stem(3), Head(), Pool(), FC()]


# (H, W, Cin, Cout, stride): same shape, downsampling, odd size, channel change at stride 1
SHAPES = [(8, 8, 8, 8, 1), (9, 9, 8, 16, 2), (7, 7, 16, 24, 1)]


def _cases():
    for spec in ALL_SPECS:
        for h, w, cin, cout, stride in SHAPES:
            if isinstance(spec, MnasBlock) and spec.residual and (stride != 1 or cin != cout):
                continue  # the walker never emits these; tested below as an error
            if isinstance(spec, (Pool, FC)) and (stride != 1):
                continue
            if isinstance(spec, Pool) and cin != cout:
                continue
            yield pytest.param(
                spec, (h, w, cin), cout, stride, id=f"{spec.key()}-{h}x{w}x{cin}-{cout}-s{stride}"
            )


@pytest.mark.parametrize("spec,in_shape,cout,stride", list(_cases()))
def test_block_forward_backward(spec, in_shape, cout, stride):
    torch.manual_seed(0)
    h, w, cin = in_shape
    if isinstance(spec, FC):
        in_shape = (1, 1, cin)
    info = LayerInfo("x", spec, in_shape, cout, stride)
    module = build_block(spec, cin, cout, stride).train()
    x = torch.randn(2, in_shape[2], in_shape[0], in_shape[1], requires_grad=True)
    y = module(x)
    oh, ow, oc = info.out_shape
    expected = (2, oc) if isinstance(spec, FC) else (2, oc, oh, ow)
    assert tuple(y.shape) == expected
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all()
    grads = {name: p.grad for name, p in module.named_parameters()}
    for name, g in grads.items():
        assert g is not None, f"{name} got no gradient"
        assert torch.isfinite(g).all(), f"{name}: non-finite gradient"
    # (a single parameter may get an exact zero: e.g. an SE reduce conv whose ReLU is dead)
    assert not grads or any(g.abs().sum() > 0 for g in grads.values())


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.key())
def test_key_round_trip(spec):
    assert parse_key(spec.key()) == spec
    assert parse_key(spec.key()).key() == spec.key()


def test_fbnet_keys_are_the_papers_nine():
    assert FBNET_OPS == (
        "ir_k3_e1",
        "ir_k3_e1_g2",
        "ir_k3_e3",
        "ir_k3_e6",
        "ir_k5_e1",
        "ir_k5_e1_g2",
        "ir_k5_e3",
        "ir_k5_e6",
        "skip",
    )
    assert parse_key("ir_k5_e1_g2") == IRBlock(5, 1, 2)
    assert MnasBlock("mbconv", 5, 6, 0.25, True).key() == "mbconv_k5_e6_se0.25_id"


def test_registry_refuses_duplicates():
    with pytest.raises(KeyError, match="block spec IRBlock is already registered"):
        register(IRBlock, lambda spec, cin, cout, stride: None)


@pytest.mark.parametrize(
    "key,message",
    [
        (
            "foo_k3",
            "unknown block key 'foo_k3': prefix 'foo' is not one of conv, dwconv, fc, head, "
            "ir, mbconv, pool, skip, stem",
        ),
        ("ir_k3_x9", "unknown block key 'ir_k3_x9': token 'x9' is not understood"),
        ("ir_k3_e1_g1", "block key 'ir_k3_e1_g1' is not canonical; write 'ir_k3_e1'"),
    ],
)
def test_bad_keys(key, message):
    with pytest.raises(HwnasError) as e:
        parse_key(key)
    assert str(e.value) == message


def test_residual_needs_matching_shapes():
    with pytest.raises(ValueError) as e:
        build_block(MnasBlock("conv", 3, 1, 0.0, True), 8, 16, 1)
    assert str(e.value) == (
        "conv_k3_id: an identity residual needs stride 1 and Cin == Cout (got stride 1, 8 -> 16)"
    )
