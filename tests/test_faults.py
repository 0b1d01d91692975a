"""Fault injection through the real CLI (``hwnas.cli.main`` in process): outputs that cannot
be written, malformed tables, a second writer, stale leftovers, key permissions, bad
options.  Every bad input ends in exactly one ``error:`` line on stderr, exit status 2, and
no new file.

Read-only and full file systems are real tmpfs mounts where the test may mount one (root
with CAP_SYS_ADMIN; chmod does not stop root), else an injected ``OSError`` on every file
or folder created under the output folder."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hwnas.cli import main
from hwnas.latency import synthetic_table
from hwnas.space import get_space, reference_arch


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("HWNAS_NO_PROGRESS", "1")
    monkeypatch.delenv("HWNAS_DEBUG", raising=False)


def run(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def one_error(err: str) -> str:
    """The single line on stderr; it must be an ``error:`` line."""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ shared inputs (cheap)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 2-class image folder, an fbnet-small architecture for it, and tables."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / "data" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                root / "data" / c / f"{i}.png"
            )
    space = get_space("fbnet-small")
    reference_arch(get_space("fbnet-small", num_classes=2), "mobilenetv2").save(root / "arch2.json")
    reference_arch(space, "mobilenetv2").save(root / "arch.json")
    reference_arch(get_space("mnasnet-small"), "mobilenetv2").save(root / "mnas.json")
    synthetic_table(space).save(root / "t.csv")
    return root


# ------------------------------------------------------------------ file systems that fail


def _mount(path: Path, options: str) -> bool:
    if os.environ.get("HWNAS_TEST_NO_MOUNT") or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return r.returncode == 0


def _fill(path: Path) -> None:
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _inject(monkeypatch, root: Path, code: int) -> None:
    """Every file or folder created under ``root`` fails with ``code`` (no mount here)."""
    base = str(root) + os.sep
    why = os.strerror(code)

    def under(p) -> bool:
        return not isinstance(p, int) and os.path.abspath(os.fspath(p)).startswith(base)

    real_open, real_os_open, real_mkdir = io.open, os.open, os.mkdir

    def fake_open(file, mode="r", *a, **kw):
        if under(file) and any(c in mode for c in "wax+"):
            raise OSError(code, why, os.fspath(file))
        return real_open(file, mode, *a, **kw)

    def fake_os_open(path, flags, *a, **kw):
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, why, os.fspath(path))
        return real_os_open(path, flags, *a, **kw)

    def fake_mkdir(path, *a, **kw):
        if under(path):
            raise OSError(code, why, os.fspath(path))
        return real_mkdir(path, *a, **kw)

    import builtins

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


@pytest.fixture(params=["output under a file", "read-only", "disk full"])
def broken(request, tmp_path, monkeypatch):
    """(folder the outputs go under, the reason the error must give, what to list after)."""
    kind = request.param
    if kind == "output under a file":
        (tmp_path / "afile").write_text("not a folder\n")
        yield tmp_path / "afile", "is not a directory", tmp_path
        return
    where = tmp_path / "mnt"
    code = errno.EROFS if kind == "read-only" else errno.ENOSPC
    options = "ro,size=1m" if kind == "read-only" else "size=256k"
    mounted = _mount(where, options)
    try:
        if mounted:
            if kind == "disk full":
                _fill(where)
        else:
            where.mkdir(exist_ok=True)
            _inject(monkeypatch, where, code)
        yield where, os.strerror(code), tmp_path
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _commands(inputs: Path, base: Path) -> dict[str, list]:
    data = ["--data", "folder", "--data-root", inputs / "data"]
    return {
        "arch ref": ["arch", "ref", "fbnet-small", "mobilenetv2", "-o", base / "a.json"],
        "arch sample": ["arch", "sample", "fbnet-small", "-o", base / "x" / "a.json"],
        "train": ["train", inputs / "arch2.json", *data, "--epochs", "1", "--out", base / "run"],
        "search": [
            "search",
            "--table",
            inputs / "t.csv",
            "--target-ms",
            "5",
            *data,
            "--epochs",
            "1",
            "--out",
            base / "runs" / "s",
        ],
        "profile": [
            "profile",
            "--device",
            "host",
            "--backend",
            "host-ort",
            "--space",
            "fbnet-small",
            "--out",
            base / "t.csv",
        ],
        "supernet train": ["supernet", "train", *data, "--epochs", "1", "--out", base / "sn"],
        "export": ["export", inputs / "arch2.json", *data, "--epochs", "1", "--out", base / "exp"],
    }


COMMANDS = ["arch ref", "arch sample", "train", "search", "profile", "supernet train", "export"]


@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_output_is_one_line_and_leaves_nothing(command, broken, inputs, capsys):
    base, reason, root = broken
    args = _commands(inputs, base)[command]
    before = listing(root)
    code, out, err = run(capsys, *args)
    line = one_error(err)
    assert code == 2 and out == ""
    assert "cannot write" in line and reason in line, line
    assert listing(root) == before


@pytest.mark.parametrize("command", ["train", "search", "supernet train", "export"])
def test_output_folder_that_is_a_file(command, inputs, tmp_path, capsys):
    args = _commands(inputs, tmp_path)[command]
    out = Path(args[args.index("--out") + 1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("mine\n")
    before = listing(tmp_path)
    code, _, err = run(capsys, *args)
    assert code == 2 and "exists and is not a directory" in one_error(err)
    assert listing(tmp_path) == before and out.read_text() == "mine\n"


# ------------------------------------------------------------------ malformed tables


def _table_case(case: str, inputs: Path, folder: Path) -> Path:
    """A copy of the good table with one defect."""
    csv, side = folder / "t.csv", folder / "t.json"
    shutil.copy(inputs / "t.csv", csv)
    shutil.copy(inputs / "t.json", side)
    text, meta = csv.read_text(), json.loads(side.read_text())
    lines = text.splitlines(keepends=True)
    if case == "non-numeric value":
        cells = lines[5].split(",")
        cells[6] = "abc"
        lines[5] = ",".join(cells)
        csv.write_text("".join(lines))
    elif case == "torn last field":
        csv.write_text(text.rstrip("\n")[:-2])  # "True" cut to "Tr"
    elif case == "row cut short":
        csv.write_text(text.rstrip("\n").rsplit(",", 5)[0] + "\n")
    elif case == "sidecar is a list":
        side.write_text("[]\n")
    elif case == "params not an object":
        side.write_text(json.dumps({**meta, "space": {**meta["space"], "params": "abc"}}))
    elif case == "calibration not a number":
        side.write_text(json.dumps({**meta, "calibration": {"scale": "x"}}))
    elif case == "another space":
        side.write_text(json.dumps({**meta, "space": {**meta["space"], "name": "mnasnet-small"}}))
    elif case == "another resolution":
        params = {**meta["space"]["params"], "resolution": 64}
        side.write_text(json.dumps({**meta, "space": {**meta["space"], "params": params}}))
    return csv


TABLE_CASES = {  # case: what the one line must say
    "non-numeric value": "t.csv: line 6, column median_us: 'abc' is not a number",
    "torn last field": "column analytic: 'Tr' is not True or False",
    "row cut short": "is not a number",
    "sidecar is a list": "t.json: not a latency table sidecar",
    "params not an object": 't.json: field space.params is "abc", not an object',
    "calibration not a number": 't.json: field calibration.scale is "x", not a finite number',
    "another space": "was profiled for space mnasnet-small",
    "another resolution": "resolution=64",
}


@pytest.mark.parametrize("case", list(TABLE_CASES))
@pytest.mark.parametrize("command", ["tables show", "tables diff", "arch show", "search"])
def test_malformed_table_is_one_line(command, case, inputs, tmp_path, capsys):
    if command.startswith("tables") and case in ("another space", "another resolution"):
        pytest.skip("tables show pairs the table with no architecture (diff: test_tables_diff)")
    table = _table_case(case, inputs, tmp_path)
    args = {
        "tables show": ["tables", "show", table],
        "tables diff": ["tables", "diff", inputs / "t.csv", table],
        "arch show": ["arch", "show", inputs / "arch.json", "--table", table],
        "search": [
            "search",
            "--table",
            table,
            "--target-ms",
            "5",
            "--data",
            "folder",
            "--data-root",
            inputs / "data",
            "--out",
            tmp_path / "run",
        ],
    }[command]
    before = listing(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2 and TABLE_CASES[case] in one_error(err)
    assert listing(tmp_path) == before


def test_arch_of_another_family_says_the_spaces_differ(inputs, capsys):
    code, _, err = run(capsys, "arch", "show", inputs / "mnas.json", "--table", inputs / "t.csv")
    assert code == 2
    assert "profiled for space fbnet-small" in one_error(err) and "not mnasnet-small" in err


def test_profile_never_overwrites_a_sidecar_it_did_not_write(inputs, tmp_path, capsys):
    victim = tmp_path / "x.json"
    shutil.copy(inputs / "arch.json", victim)
    before = listing(tmp_path)
    code, _, err = run(
        capsys,
        "profile",
        "--device",
        "host",
        "--backend",
        "host-ort",
        "--space",
        "fbnet-small",
        "--out",
        tmp_path / "x.csv",
    )
    assert code == 2 and "x.json exists and is not a latency table sidecar" in one_error(err)
    assert victim.read_bytes() == (inputs / "arch.json").read_bytes()
    assert listing(tmp_path) == before


def test_profile_out_a_folder_says_so(tmp_path, capsys):
    code, _, err = run(
        capsys,
        "profile",
        "--device",
        "host",
        "--backend",
        "host-ort",
        "--space",
        "fbnet-small",
        "--out",
        tmp_path,
    )
    assert code == 2 and one_error(err) == (
        f"error: cannot write {tmp_path}: it is a directory; --out takes a table CSV path"
    )


# ------------------------------------------------------------------ bad options and files


def _arch_variant(inputs: Path, tmp_path: Path, edit) -> Path:
    doc = json.loads((inputs / "arch.json").read_text())
    edit(doc)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    return p


BAD_ARCH = {
    "fractional choice": (lambda d: d["choices"].__setitem__(0, 1.5), "integer option indices"),
    "boolean choice": (lambda d: d["choices"].__setitem__(0, True), "integer option indices"),
    "unknown schema": (lambda d: d.__setitem__("schema", 99), "unknown architecture schema 99"),
    "values contradict": (
        lambda d: d["values"].__setitem__("s1.width", 999),
        "'values' contradict 'choices' at 's1.width'",
    ),
    "negative resolution": (
        lambda d: d["space_args"].__setitem__("resolution", -32),
        "resolution must be an integer of at least 8",
    ),
    "string classes": (
        lambda d: d["space_args"].__setitem__("num_classes", "ten"),
        "num_classes must be an integer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARCH))
def test_strict_arch_files(case, inputs, tmp_path, capsys):
    edit, message = BAD_ARCH[case]
    path = _arch_variant(inputs, tmp_path, edit)
    code, out, err = run(capsys, "arch", "show", path)
    assert code == 2 and out == "" and message in one_error(err)


BAD_OPTIONS = {
    "--lr inf": (["train", "ARCH", "--lr", "inf", "--out", "OUT"], "'--lr': inf is not a finite"),
    "--lr 1e308": (["train", "ARCH", "--lr", "1e308", "--out", "OUT"], "not a finite number"),
    "--label-smoothing nan": (
        ["train", "ARCH", "--label-smoothing", "nan", "--out", "OUT"],
        "not a finite number",
    ),
    "--target-ms inf": (
        ["search", "--target-ms", "inf", "--out", "OUT"],
        "--target-ms takes positive finite numbers",
    ),
    "--target-ms 1e308": (
        ["search", "--target-ms", "1e308", "--table", "TABLE", "--out", "OUT"],
        "--target-ms takes positive finite numbers",
    ),
    "--width-mult nan": (
        ["arch", "ref", "fbnet-small", "mobilenetv2", "--width-mult", "nan", "-o", "OUT"],
        "not a finite number",
    ),
    "--width-mult -1": (
        ["arch", "ref", "fbnet-small", "mobilenetv2", "--width-mult", "-1", "-o", "OUT"],
        "width_mult must be a number in (0, 10]",
    ),
    "--resolution -32": (
        ["arch", "ref", "fbnet-small", "mobilenetv2", "--resolution", "-32", "-o", "OUT"],
        "resolution must be an integer of at least 8",
    ),
    "--strategy random": (
        ["search", "--strategy", "random", "--target-ms", "1", "--out", "OUT"],
        "Invalid value for '--strategy'",
    ),
    "--fit-fraction inf": (
        ["tables", "validate", "TABLE", "--fit-fraction", "inf"],
        "not a finite number",
    ),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_options_are_one_line(case, inputs, tmp_path, capsys):
    args, message = BAD_OPTIONS[case]
    subst = {"ARCH": inputs / "arch.json", "OUT": tmp_path / "out", "TABLE": inputs / "t.csv"}
    code, out, err = run(capsys, *[subst.get(a, a) for a in args])
    assert code == 2 and message in one_error(err)
    assert listing(tmp_path) == []


def test_supernet_resume_without_epochs_takes_the_default_not_the_run(inputs, tmp_path, capsys):
    """`supernet train` without --epochs trains the config's default (12), not what a run in
    --out was started with: resuming a 1-epoch run without --epochs is refused naming epochs,
    and nothing in the folder changes."""
    data = ["--data", "folder", "--data-root", inputs / "data", "--batch-size", "4"]
    sn = tmp_path / "sn"
    code, _, err = run(capsys, "supernet", "train", *data, "--epochs", "1", "--out", sn)
    assert code == 0, err
    assert json.loads((sn / "config.json").read_text())["epochs"] == 1
    before = {p: p.read_bytes() for p in sn.rglob("*") if p.is_file()}
    code, _, err = run(capsys, "supernet", "train", *data, "--resume", "--out", sn)
    line = one_error(err)
    assert code == 2 and "different settings (epochs)" in line, line
    assert {p: p.read_bytes() for p in sn.rglob("*") if p.is_file()} == before


# ------------------------------------------------------------------ one writer per output

HOLDER = """
import sys
from hwnas.io import OutputLock
lock = OutputLock(sys.argv[1]).acquire()
print("held", flush=True)
sys.stdin.read()
"""


def _holder(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """Another process holding the lock of each command's output folder."""
    base = tmp_path_factory.mktemp("held")
    outs = {
        c: Path(a[a.index("--out") + 1]) for c, a in _commands(base, base).items() if "--out" in a
    }
    procs = {c: _holder(o) for c, o in outs.items()}
    yield base, procs
    for p in procs.values():
        p.kill()
        p.wait()


@pytest.mark.parametrize("command", ["profile", "search", "supernet train", "export", "train"])
def test_second_writer_is_refused_naming_the_holder(command, held, inputs, capsys):
    base, procs = held
    args = _commands(inputs, base)[command]
    before = listing(base)
    code, _, err = run(capsys, *args)
    line = one_error(err)
    assert code == 2 and f"is being written by another hwnas run (pid {procs[command].pid}" in line
    assert listing(base) == before


def test_lock_of_a_killed_run_is_taken_over_and_released(tmp_path):
    from hwnas.io import OutputLock

    out = tmp_path / "t.csv"
    proc = _holder(out)
    lock_file = tmp_path / ".t.csv.lock"
    assert lock_file.read_text().strip() == str(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert lock_file.exists()  # the killed holder could not remove it
    with OutputLock(out):
        assert lock_file.read_text().strip() == str(os.getpid())
    assert not lock_file.exists()


# ------------------------------------------------------------------ leftovers of killed runs


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_next_profile_removes_a_killed_runs_temporaries(inputs, tmp_path, capsys):
    csv = tmp_path / "t.csv"
    shutil.copy(inputs / "t.csv", csv)
    meta = json.loads((inputs / "t.json").read_text())
    # threads 2 in the table, 1 asked: the run is refused after taking the output (measuring
    # nothing), and has cleaned up what the killed run left
    meta["provenance"] = {
        "device": "host",
        "backend": "host-ort",
        "precision": "int8",
        "threads": 2,
    }
    (tmp_path / "t.json").write_text(json.dumps(meta))
    dead = _dead_pid()
    stale = [
        tmp_path / f".t.json.{dead}-abcd1234.tmp",
        tmp_path / f".t.csv.{dead}-zz_y9876.tmp",
        tmp_path / ".t.json.k2j4h5g6.tmp",
    ]  # the last: an older hwnas's, long ago
    live = tmp_path / f".t.csv.{os.getpid()}-live0000.tmp"  # a live writer's: kept
    for p in stale + [live]:
        p.write_text("partial")
    old = time.time() - 3600
    os.utime(stale[-1], (old, old))
    code, out, err = run(
        capsys,
        "profile",
        "--device",
        "host",
        "--backend",
        "host-ort",
        "--space",
        "fbnet-small",
        "--threads",
        "1",
        "--out",
        csv,
    )
    assert code == 2 and "was profiled with threads=2" in one_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["t.csv", "t.json", live.name])


def test_next_export_removes_stale_staging_folders(tmp_path):
    from hwnas.io import OutputLock, staging_dir

    out = tmp_path / "export"
    dead = _dead_pid()
    for name in (f".export.tmp-{dead}-abcd1234", f".export.old-{dead}"):
        (tmp_path / name / "deep").mkdir(parents=True)
        (tmp_path / name / "deep" / "model_int8.tflite").write_bytes(b"partial")
    with OutputLock(out):
        tmp = staging_dir(out)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".export.lock", tmp.name]


def test_standin_trees_of_killed_phones_are_removed(tmp_path):
    from hwnas.testing.adb_standin.phone import remove_stale_roots

    dead = _dead_pid()
    gone = tmp_path / f"hwnas-standin-{dead}-abcd1234"
    mine = tmp_path / f"hwnas-standin-{os.getpid()}-abcd1234"
    for d in (gone, mine):
        (d / "data").mkdir(parents=True)
    assert remove_stale_roots(str(tmp_path)) == [gone]
    assert not gone.exists() and mine.exists()


# ------------------------------------------------------------------ ADB key permissions


def test_adb_key_is_private_from_creation_and_fixed_when_loose(tmp_path, monkeypatch, capsys):
    from hwnas.device_profiler.adb import keys

    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path))
    created = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):
        if flags & os.O_CREAT:
            created.append((Path(path).name, mode))
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    old_umask = os.umask(0o022)
    try:
        keys.signers()
    finally:
        os.umask(old_umask)
    monkeypatch.setattr(os, "open", real_open)
    key = tmp_path / "adbkey"
    private = [m for name, m in created if name.startswith(".adbkey.") and "pub" not in name]
    assert private == [0o600]  # created private, not chmod-ed afterwards
    assert key.stat().st_mode & 0o777 == 0o600 and (tmp_path / "adbkey.pub").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    key.chmod(0o644)
    keys.signers()
    assert key.stat().st_mode & 0o777 == 0o600
    assert "was readable by others (mode 644); made it 0600" in capsys.readouterr().err


# ------------------------------------------------------------------ a real SIGKILL, then resume

KILLED_PROFILE = """
import sys
sys.path.insert(0, sys.argv[2])
from spaces import tiny_space
from hwnas.device_profiler.runner import ProfileConfig, profile
space = tiny_space("tiny-faults", depths=(2, 1), head_channels=16,
                   ops=("ir_k3_e1", "ir_k3_e1_g2", "skip"), width_multipliers=(1.0,),
                   params={"f": 1})
keys = tuple(i.key for i in space.all_layer_infos())  # every key, named: no extra passes
profile(ProfileConfig(space=space, out=sys.argv[1], backend="host-ort", device="host",
                      warmup=1, runs=int(sys.argv[3]), repeats=2, progress=False, keys=keys))
"""


def test_profile_killed_with_sigkill_resumes_without_loss(tmp_path, monkeypatch):
    from hwnas.latency import LatencyTable

    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "tables" / "t.csv"
    tests = str(Path(__file__).parent)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PROFILE, str(out), tests, "400"])
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and len(out.read_text().splitlines()) >= 3:  # header + 2 rows
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the profile ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = LatencyTable.load(out).frame  # whole rows only: every value checks
    assert not before.duplicated(["block", "H", "W", "Cin", "Cout", "stride"]).any()
    assert (out.parent / ".t.csv.lock").exists()  # the killed run's lock file is left
    from hwnas.device_profiler.runner import ProfileConfig, profile
    from spaces import tiny_space

    space = tiny_space(
        "tiny-faults",
        depths=(2, 1),
        head_channels=16,
        ops=("ir_k3_e1", "ir_k3_e1_g2", "skip"),
        width_multipliers=(1.0,),
        params={"f": 1},
    )
    keys = tuple(i.key for i in space.all_layer_infos())
    profile(
        ProfileConfig(
            space=space,
            out=out,
            backend="host-ort",
            device="host",
            warmup=1,
            runs=5,
            repeats=2,
            progress=False,
            keys=keys,
            passes=1,
        )
    )
    after = LatencyTable.load(out).frame
    key = ["block", "H", "W", "Cin", "Cout", "stride"]
    assert not after.duplicated(key).any() and len(after) > len(before)
    kept = before.merge(after, on=key, suffixes=("", "_after"))
    assert len(kept) == len(before)  # nothing measured before the kill was lost or redone
    assert (kept["median_us"] == kept["median_us_after"]).all()
    assert sorted(p.name for p in out.parent.iterdir()) == ["t.csv", "t.json"]
