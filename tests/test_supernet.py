"""The FBNet supernet: every path is the builder's network, BN re-estimation, and a supernet
that learns on a space with stage-first layers where uniform sampling does not."""

import pytest
import torch
import torch.nn.functional as F

from hwnas.data import load_dataset
from hwnas.data.splits import DataSplits, ImageDataset
from hwnas.space import FBNET_OPS, build_model, get_space
from hwnas.space.space import Stage
from hwnas.space.arch import random_arch
from hwnas.supernet import FBNetSupernet, calibrate, path_accuracy, slice_like, widest_arch
from hwnas.supernet.train import uniform_path
from spaces import tiny_space

TINY = tiny_space(
    "tiny-supernet",
    resolution=12,
    num_classes=4,
    ops=("ir_k3_e1", "ir_k3_e3", "ir_k5_e1_g2", "ir_k5_e3", "skip"),
)


def _randomise_bn(net):
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)


def test_slices_are_leading_channels_and_kernel_centres():
    w = torch.arange(2 * 3 * 5 * 5.0).view(2, 3, 5, 5)
    s = slice_like(w, torch.Size((1, 2, 3, 3)))
    assert torch.equal(s, w[:1, :2, 1:4, 1:4])
    assert torch.equal(slice_like(torch.arange(6.0), torch.Size((4,))), torch.arange(4.0))


@pytest.mark.parametrize("space", [TINY, get_space("fbnet-small")], ids=lambda s: s.name)
def test_every_path_is_the_extracted_builder_network(space):
    """Random paths (every op and width) and the widest path compute exactly what the
    builder's network with the copied weights and BN statistics computes (eval mode)."""
    torch.manual_seed(0)
    net = FBNetSupernet(space)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
    r = space.resolution
    paths = [random_arch(space, seed=s).choices for s in range(4)]
    paths.append(widest_arch(space, net.largest_ir))
    for arch in paths:
        net.train()
        net(torch.randn(8, 3, r, r), arch)  # BN statistics move in the templates
        net.eval()
        model = net.extract(arch).eval()
        x = torch.randn(3, 3, r, r)
        with torch.no_grad():
            torch.testing.assert_close(net(x, arch), model(x), rtol=1e-5, atol=1e-5)
        assert [type(m) for m in model.children()] == [
            type(m) for m in build_model(space, arch).children()
        ]


def test_bn_reestimation_matches_the_standalone_network():
    """After calibration the path's running statistics are those of the batches it saw: the
    builder's network given the same weights and re-estimated on the same batches in train
    mode (cumulative average) computes the same outputs."""
    torch.manual_seed(1)
    net = FBNetSupernet(TINY)
    arch = random_arch(TINY, seed=7).choices
    net.train()
    net(torch.randn(16, 3, 12, 12), arch)
    batches = [torch.randn(16, 3, 12, 12) for _ in range(3)]
    calibrate(net, arch, batches)
    model = net.extract(arch)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    model.eval()
    x = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(net(x, arch), model(x), rtol=1e-4, atol=1e-5)


def _toy_splits(n=768, seed=0) -> DataSplits:
    """A 4-class task a small CNN learns in a few dozen steps: a bright quadrant per class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = (torch.rand(n, 1, 12, 12, generator=g) * 60).to(torch.uint8)
    for i, c in enumerate(labels.tolist()):
        r, q = divmod(c, 2)
        images[i, 0, r * 6 : r * 6 + 6, q * 6 : q * 6 + 6] += 150
    ds = ImageDataset(images, labels, (0.3,), (0.3,), 3)
    cut = int(0.8 * n)
    return DataSplits(
        train=ds.subset(range(cut)),
        val=ds.subset(range(cut, n)),
        test=ds.subset(range(cut, n)),
        classes=[str(i) for i in range(4)],
        mean=(0.3,),
        std=(0.3,),
    )


# Five stages, four of them starting with a stage-first layer, FBNet's 9 candidates.
LEARN = tiny_space(
    "tiny-learn",
    resolution=16,
    num_classes=10,
    in_channels=1,
    ops=FBNET_OPS,
    stages=(
        Stage("s1", 8, 1, 1),
        Stage("s2", 16, 2, 2),
        Stage("s3", 24, 2, 2),
        Stage("s4", 32, 2, 2),
        Stage("s5", 48, 1, 1),
    ),
    head_channels=64,
)


def _random_path_accuracy(current: bool, steps=150, seed=0) -> float:
    """Train a supernet on 150 uniformly sampled paths of Fashion-MNIST at 16 px; the mean
    held-out accuracy of 6 random paths, BN re-estimated.  ``current``: shared masters,
    residual blocks starting as the identity, stage-first layers anchored and distilled;
    otherwise the supernet that stayed at chance (independent stage-first masters, default
    init, plain uniform sampling)."""
    torch.manual_seed(seed)
    splits = load_dataset("fashion-mnist", resolution=16, in_channels=1, subset=4000)
    net = FBNetSupernet(LEARN, share_stage_first=current, identity_init=current)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    while step < steps:
        for x, y in splits.loader("train", 32, augment=False, seed=step):
            arch = uniform_path(LEARN, gen)
            net.train()
            if current:
                logits, mse = net.forward_anchored(x, arch, min(0.5, step / steps), gen)
                loss = F.cross_entropy(logits, y) + mse
            else:
                loss = F.cross_entropy(net(x, arch), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            step += 1
            if step >= steps:
                break
    rng = torch.Generator().manual_seed(99)
    paths = [uniform_path(LEARN, rng) for _ in range(6)]
    return sum(
        path_accuracy(net, a, splits, calib_batches=5, max_eval_batches=2) for a in paths
    ) / len(paths)


def test_random_paths_learn_where_uniform_sampling_stays_at_chance():
    """The regression guard for the supernet that stayed at chance: on a space with
    stage-first layers and FBNet's 9 candidates, random paths (every layer and width sampled)
    of the current supernet beat chance (0.10) clearly after 150 steps (measured 0.54), while
    the old supernet under plain uniform sampling stays at chance (measured 0.09)."""
    torch.set_num_threads(1)
    current, old = _random_path_accuracy(True), _random_path_accuracy(False)
    assert current > 0.3, (current, old)
    assert old < 0.18, (current, old)
    assert current - old > 0.2


def test_residual_blocks_start_as_identity_and_stage_first_candidates_share_a_master():
    """Zero-initialised last BN scale: at init every sampled ``ir`` block at a residual
    position returns its input; every ``ir`` candidate of a layer (stage-first too) is a
    slice of one master."""
    space = get_space("fbnet-small")
    net = FBNetSupernet(space).train()
    arch = random_arch(space, seed=3).choices
    for info in net.layers(arch):
        if net.residual.get(info.name) and info.spec.key() != "skip":
            x = torch.randn(4, info.cin, 8, 8)
            torch.testing.assert_close(net.run_layer(info, x), x)
    first = [n for n, r in net.residual.items() if not r]
    assert first
    for name in first:
        keys = {net._master_key(name, op) for op in net.ops if op != "skip"}
        assert len(keys) == 1, keys


def test_selection_scores_distinct_candidates_under_the_target():
    """The FBNet winner is the best-scoring of distinct candidates drawn from θ, every one
    under the target, ranked by their supernet accuracy."""
    from hwnas.latency import synthetic_table
    from hwnas.search.fbnet import refine, select

    space = tiny_space(
        "tiny-select", resolution=12, num_classes=4, ops=("ir_k3_e1", "ir_k3_e3", "skip")
    )
    table = synthetic_table(space)
    lo, hi = table.bounds(space)
    target = lo + 0.5 * (hi - lo)
    theta = [torch.zeros(len(c)) for c in space.choices]
    torch.manual_seed(0)
    net, splits = FBNetSupernet(space), _toy_splits(256)
    scored = select(net, space, table, theta, target, splits, n=6)
    assert 2 <= len(scored) <= 6
    assert len({a.choices for a, _ in scored}) == len(scored)
    assert all(table.predict(a, space) <= target for a, _ in scored)
    accs = [acc for _, acc in scored]
    assert accs == sorted(accs, reverse=True) and all(0 <= v <= 1 for v in accs)
    # evolution from θ's candidates: more architectures, all under T, best first, and the
    # winner at least as good as the selection's
    refined = refine(net, space, table, target, splits, scored, generations=2)
    assert len(refined) > len(scored)
    assert {a.choices for a, _ in scored} <= {a.choices for a, _ in refined}
    assert all(table.predict(a, space) <= target for a, _ in refined)
    assert [v for _, v in refined] == sorted((v for _, v in refined), reverse=True)
    assert refined[0][1] >= scored[0][1]


def test_branch_gates_keep_the_forward_value_and_reach_theta():
    """Gating only the residual branch (x + g·(y − x)) computes the same path at g = 1 and
    still passes gradients to every gate."""
    torch.manual_seed(0)
    net = FBNetSupernet(TINY).train()
    arch = random_arch(TINY, seed=3).choices
    x = torch.randn(4, 3, 12, 12)
    gates = [torch.ones((), requires_grad=True) for _ in TINY.choices]
    with torch.no_grad():
        plain = net(x, arch)
    out = net(x, arch, gates=gates, gate_branch=True)
    torch.testing.assert_close(out, plain)
    out.square().mean().backward()
    assert any(g.grad is not None and g.grad != 0 for g in gates)


def test_depth_sampling_makes_every_stage_depth_equally_likely():
    """``depth_path``: per stage, how many residual layers run is uniform over 0..n (uniform
    sampling almost never trains a shallow stage), the running ones never ``skip``, and
    widths and stage-first ops are still drawn from every option."""
    from collections import Counter

    from hwnas.supernet.train import depth_path

    space = get_space("fbnet-small")
    net = FBNetSupernet(space)
    skip = net.ops.index("skip")
    stages = {}
    for name, residual in net.residual.items():
        if residual:
            stages.setdefault(name.split(".")[0], []).append(net.op_choice[name])
    assert stages and all(len(v) == 3 for v in stages.values())
    gen = torch.Generator().manual_seed(0)
    depths, firsts, widths = Counter(), Counter(), Counter()
    n = 800
    for _ in range(n):
        arch = depth_path(net, gen)
        space.layers(arch)  # a valid architecture
        for slots in stages.values():
            depths[sum(arch[i] != skip for i in slots)] += 1
        firsts[arch[net.op_choice["s3.l0"]]] += 1
        widths[arch[space.choice_index("s4.width")]] += 1
    total = n * len(stages)
    assert set(depths) == {0, 1, 2, 3}
    assert all(abs(c / total - 0.25) < 0.04 for c in depths.values()), depths
    assert len(firsts) == len(net.ops) and len(widths) == 3
    gen = torch.Generator().manual_seed(0)
    uniform = Counter(
        sum(uniform_path(space, gen)[i] != skip for i in stages["s3"]) for _ in range(n)
    )
    assert uniform[0] < n * 0.01  # what depth sampling fixes: (1/9)^3 of paths


def test_channel_sampling_draws_ops_by_their_expansion():
    """``channel_path``: depths as ``depth_path`` draws them, but the running residual ops in
    proportion to their expansion (``e6`` six times as often as ``e1``), so the shared
    master's outer expansion channels train on more than a quarter of the draws."""
    from collections import Counter

    from hwnas.supernet.train import channel_path

    space = get_space("fbnet-small")
    net = FBNetSupernet(space)
    skip = net.ops.index("skip")
    slots = [i for v in net.residual_slots.values() for i in v]
    gen = torch.Generator().manual_seed(0)
    ops, depth = Counter(), Counter()
    for _ in range(600):
        arch = channel_path(net, gen)
        space.layers(arch)  # a valid architecture
        ops.update(net.ops[arch[i]] for i in slots if arch[i] != skip)
        depth[sum(arch[i] != skip for i in net.residual_slots["s3"])] += 1
    runs = sum(ops.values())
    expansion = {op: net.specs[op].expansion for op in ops}
    total = sum(expansion[op] for op in net.ops if op != "skip")
    for op in net.ops:
        if op != "skip":
            assert abs(ops[op] / runs - expansion[op] / total) < 0.02, (op, ops)
    assert set(depth) == {0, 1, 2, 3}
    assert all(abs(c / 600 - 0.25) < 0.05 for c in depth.values()), depth


def test_stage_first_skips_run_in_the_path_when_asked():
    """``skip_in_path``: a stage-first ``skip`` (a 1x1 projection) runs itself in the training
    path, undistilled, so the pass is the path's own network; by default it is distilled and
    the anchor runs in its place."""
    torch.manual_seed(0)
    net = FBNetSupernet(TINY).train()
    skip = list(net.ops).index("skip")
    anchor = list(net.ops).index(net.largest_ir)
    arch = widest_arch(TINY, net.largest_ir)
    firsts = [net.op_choice[n] for n, r in net.residual.items() if not r]
    assert firsts
    for c in firsts:
        arch[c] = skip
    x = torch.randn(8, TINY.in_channels, TINY.resolution, TINY.resolution)
    torch.manual_seed(1)
    own = net(x, arch)
    torch.manual_seed(1)
    logits, mse = net.forward_anchored(x, arch, 0.0, skip_in_path=True)
    torch.testing.assert_close(logits, own)
    assert float(mse.detach()) == 0.0
    anchored = list(arch)
    for c in firsts:
        anchored[c] = anchor
    torch.manual_seed(1)
    logits, mse = net.forward_anchored(x, arch, 0.0)
    torch.manual_seed(1)
    torch.testing.assert_close(logits, net(x, anchored))
    assert float(mse.detach()) > 0


def test_progressive_sampling_shrinks_from_the_largest_path_to_every_depth():
    """``progressive_path`` (OFA's progressive shrinking): the first quarter of the run only
    the largest path; then widths and both expansion-6 kernels; then every ``ir`` block; no
    layer is skipped until the last quarter, which draws depths as ``depth_path`` does."""
    from hwnas.supernet.train import SAMPLERS, progressive_path, widest_arch

    space = get_space("fbnet-small")
    net = FBNetSupernet(space)
    gen = torch.Generator().manual_seed(0)
    op_at = [i for i, c in enumerate(space.choices) if c.kind == "op"]
    width_at = [i for i, c in enumerate(space.choices) if c.kind == "width"]
    seen = {}
    for progress in (0.0, 0.2, 0.3, 0.6, 0.9):
        archs = [progressive_path(net, gen, progress) for _ in range(200)]
        for a in archs:
            space.layers(a)  # a valid architecture
        seen[progress] = (
            {net.ops[a[i]] for a in archs for i in op_at},
            {a[i] for a in archs for i in width_at},
        )
        if progress < 0.25:
            assert all(a == widest_arch(space, net.largest_ir) for a in archs)
    assert seen[0.3][0] == {"ir_k3_e6", "ir_k5_e6"} and len(seen[0.3][1]) > 1
    assert seen[0.6][0] == set(net.ops) - {"skip"}
    assert "skip" in seen[0.9][0]
    assert SAMPLERS["progressive"] is progressive_path
