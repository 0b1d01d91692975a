"""Blocks' times inside whole networks: per-operator profiles (benchmark_model's through the
ADB stand-in, ONNX Runtime's on the host) given back to the layers of a real network."""

from pathlib import Path

import pytest

from hwnas.device_profiler.adb import AdbBackend
from hwnas.device_profiler.blockmodels import ModelCache
from hwnas.device_profiler.opprofile import block_times, layer_of, profiled_ms
from hwnas.space import Arch
from hwnas.space.builder import module_name
from spaces import tiny_space

SPACE = tiny_space(  # 64 px: its nodes take more than the 1 µs benchmark_model prints
    "tiny-in-network", depths=(2, 2), width_multipliers=(1.0,), resolution=64
)
# s1.l0 e3, s1.l1 skip, s2.l0 e1, s2.l1 e3: an identity layer and both expansions
ARCH = Arch.of(SPACE, [0, 1, 2, 0, 0, 1], "mixed")


def test_layer_of_reads_onnx_and_tflite_names():
    mods = ["stem", "s1_l0", "s2_l0", "s2_l1", "head", "pool", "fc"]
    assert layer_of("/s2_l1/body/body.0/body.0.0/Conv_token_13", mods) == "s2_l1"
    assert layer_of("/stem/stem.0/Conv_token_1", mods) == "stem"
    lt = "litert_torch._convert.to_channel_last_io.ChannelLastIOWrapper/hwnas.space.builder.Net_wrapped"
    assert (
        layer_of(f"{lt}/hwnas.space.blocks.Residual_s2_l0/x.ConvBNReLU_1/y.ReLU_2", mods) == "s2_l0"
    )
    assert (
        layer_of(f"{lt}/hwnas.space.blocks.ConvBNReLU_stem/y;;{lt}/z.Residual_s1_l0", mods)
        == "stem"
    )
    assert layer_of(f"[{lt}/torch.nn.modules.pooling.AdaptiveAvgPool2d_pool;1]:40", mods) == "pool"
    assert layer_of("input_QuantizeLinear", mods) is None
    assert layer_of("/s2_l10/Add", mods) is None  # s2_l1 is not a prefix match


def _modules() -> list[str]:
    return [module_name(i.name) for i in SPACE.layers(ARCH)]


def _computing() -> set[str]:
    """The layers that run nodes (an identity layer runs none)."""
    return {module_name(i.name) for i in SPACE.layers(ARCH) if not i.key[0].startswith("skip")}


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Path:
    cache = ModelCache.at(tmp_path_factory.mktemp("cache"), 0)
    return cache.network(SPACE, ARCH, "tflite", "int8").path


@pytest.mark.device
@pytest.mark.export
def test_phone_profiles_give_every_layer_its_nodes(network, phone_env):
    """Through the ADB wire to the stand-in: the same network profiled by the plain
    interpreter (TFLite nodes, named) and through XNNPACK (its own operators, matched to
    the delegated nodes by kind, reshapes elided) gives the same layers the same shares;
    a build that cannot profile XNNPACK's operators leaves them unattributed, with a note."""
    from hwnas.testing.adb_standin import AdbStandin, PhoneConfig

    binary = phone_env
    shares = {}
    for variant, xnn in (("modern", False), ("modern", True), ("v2019", True)):
        with (
            AdbStandin(PhoneConfig(variant=variant)) as s,
            AdbBackend(serial=s.serial, benchmark_binary=binary, use_xnnpack=xnn) as b,
        ):
            ops = b.op_times(network, warmup=1, runs=3)
            assert sorted(p.name for p in s.phone.local("/data/local/tmp").iterdir()) == [
                "benchmark_model"
            ]  # the pushed network is removed again
        per, note = block_times(ops, _modules(), network)
        if variant == "v2019":
            assert per == {} and "2.10 and later" in note
            continue
        assert note is None and set(per) == _computing()
        assert min(per[k] for k in ("stem", "s1_l0", "s2_l0", "s2_l1", "head")) > 0
        inside = sum(o.ms for o in ops if o.delegate) if xnn else profiled_ms(ops)
        assert sum(per.values()) == pytest.approx(inside, rel=1e-6)  # every node given out
        shares[xnn] = {k: v / sum(per.values()) for k, v in per.items()}
    for k in shares[False]:
        assert shares[True][k] == pytest.approx(shares[False][k], abs=0.02), k


@pytest.mark.device
@pytest.mark.export
def test_a_phone_profile_calibrates_and_times_its_blocks_inside_networks(tmp_path, phone_env):
    """`hwnas profile --device pixel1` end to end through the stand-in: its calibration
    networks are also profiled per operator (through XNNPACK, the default) and the table
    records, per op type, the blocks' times inside them beside their standalone times."""
    import pandas as pd

    from hwnas.device_profiler.runner import ProfileConfig, profile_run
    from hwnas.latency import LatencyTable
    from hwnas.testing.adb_standin import AdbStandin

    lines = []
    with AdbStandin() as s:
        cfg = ProfileConfig(
            device="pixel1",
            serial=s.serial,
            benchmark_binary=phone_env,
            space=SPACE,
            out=tmp_path / "px.csv",
            warmup=1,
            runs=3,
            repeats=1,
            passes=1,
            edges=False,
            progress=False,
            calibrate=4,
        )
        profile_run(cfg, log=lines.append)
    ins = LatencyTable.load(tmp_path / "px.csv").meta["in_network"]
    assert ins["networks"] == 4 and "enable_op_profiling" in ins["profiler"]
    assert {"stem", "ir", "head"} <= set(ins["per_type"])
    assert ins["per_type"]["ir"]["in_network_ms"] > 0
    rows = pd.read_csv(tmp_path / "px.in_network.csv")
    assert rows["network"].nunique() == 4 and (rows["table_ms"] > 0).all()
    assert any(m.startswith("blocks inside 4 networks (benchmark_model") for m in lines)
