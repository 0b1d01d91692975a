"""hwnas search on an accelerator: the CPU path unchanged (FBNet's warm-up and θ steps write
the log of the code before), an absent accelerator refused in one line before anything is
written, a resume on another accelerator."""

from __future__ import annotations

import json

import pytest
import torch

from hwnas.accelerator import present
from hwnas.cli import main
from hwnas.errors import HwnasError
from hwnas.latency import synthetic_table
from hwnas.search.fbnet import FBNetConfig, search
from spaces import tiny_space
from test_accelerator import as_if_written_on_cuda

cpu_only = pytest.mark.skipif(present() != ["cpu"], reason="this machine has a GPU")

TINY = tiny_space(
    "tiny-fb-acc",
    resolution=12,
    num_classes=10,
    ops=("ir_k3_e1", "ir_k3_e3", "ir_k5_e1_g2", "skip"),
)

# log.csv of this search's first two epochs (hard mode, seed 3) as written by the code
# before --accelerator (commit ee657ba), without the seconds column
BEFORE = [
    "1,warmup,5,0.0853553,3.94072,0.131707,1.5983,nan,nan,nan,nan,0.307724,0.311197,"
    "0.187142,0,0.693147,1.38629,1.38629,0.693147,1.38629,1.38629",
    "2,search,4.77999,0.037059,3.01741,0.160976,0.744536,1.64779,2.39162,0,0.204151,"
    "0.310189,0.311197,0.847523,0,0.693097,1.38624,1.38626,0.693097,1.38626,1.38626",
]


def _fbnet(tmp_path, name, **kw) -> FBNetConfig:
    table = synthetic_table(TINY)
    lo, hi = table.bounds(TINY)
    base = dict(
        target_ms=lo + 0.3 * (hi - lo),
        out=str(tmp_path / name),
        subset=256,
        epochs=3,
        warmup_epochs=1,
        batch_size=64,
        mode="hard",
        seed=3,
    )
    return FBNetConfig(**{**base, **kw})


def _rows(out) -> list[str]:
    return [r.rsplit(",", 1)[0] for r in (out / "log.csv").read_text().splitlines()[1:]]


def test_fbnet_steps_on_cpu_are_those_of_the_code_before(tmp_path):
    """Warm-up and θ steps on the CPU: the library default, ``cpu`` and (on a CPU-only
    machine) ``auto`` write the log of the code before accelerators and the same weights."""
    table = synthetic_table(TINY)
    names = ["default", "cpu"] + (["auto"] if present() == ["cpu"] else [])
    states = []
    for name in names:
        kw = {} if name == "default" else {"accelerator": name}
        assert search(_fbnet(tmp_path, name, **kw), table, TINY, stop_after=2) is None
        assert _rows(tmp_path / name) == BEFORE, name
        states.append(torch.load(tmp_path / name / "ckpt.pt", weights_only=True))
    for other in states[1:]:
        assert all(torch.equal(states[0]["net"][k], other["net"][k]) for k in states[0]["net"])
        assert all(torch.equal(a, b) for a, b in zip(states[0]["theta"], other["theta"]))


def test_fbnet_resumes_on_another_accelerator(tmp_path):
    """A search stopped after 2 epochs, its checkpoint made to look written on a GPU,
    resumes with another --accelerator (a resume-free field) to the uninterrupted result."""
    table = synthetic_table(TINY)
    whole = search(_fbnet(tmp_path, "whole", select=0, refine=0), table, TINY)
    assert search(_fbnet(tmp_path, "part", select=0, refine=0), table, TINY, stop_after=2) is None
    as_if_written_on_cuda(tmp_path / "part" / "ckpt.pt")
    cfg = _fbnet(tmp_path, "part", select=0, refine=0, resume=True, accelerator="auto")
    assert search(cfg, table, TINY).choices == whole.choices
    assert _rows(tmp_path / "part") == _rows(tmp_path / "whole")
    assert json.loads((tmp_path / "part" / "config.json").read_text())["accelerator"] == "auto"


@cpu_only
@pytest.mark.parametrize(
    "extra",
    [
        ["--strategy", "fbnet"],
        ["--strategy", "evolution", "--supernet", "nope"],
        ["--strategy", "mnasnet"],
        ["--strategy", "mnasnet", "--evaluator", "shared"],
        ["--strategy", "fbnet", "--target-frac", "0.6"],
    ],
)
def test_search_cli_cuda_absent_is_one_line(capsys, tmp_path, monkeypatch, extra):
    """Nothing written: no run folder, no latency table profiled first."""
    monkeypatch.chdir(tmp_path)
    target = [] if "--target-frac" in extra else ["--target-ms", "1"]
    with pytest.raises(SystemExit) as e:
        main(["search", *target, "--out", "run", *extra, "--accelerator", "cuda"])
    assert e.value.code == 2
    assert capsys.readouterr().err == (
        "error: --accelerator cuda: CUDA is not available on this machine (present: cpu)\n"
    )
    assert not any(tmp_path.iterdir())


@cpu_only
def test_library_search_cuda_absent_is_one_line(tmp_path):
    with pytest.raises(HwnasError, match="^--accelerator cuda: CUDA is not available"):
        search(_fbnet(tmp_path, "run", accelerator="cuda"), synthetic_table(TINY), TINY)
    assert not (tmp_path / "run").exists()
