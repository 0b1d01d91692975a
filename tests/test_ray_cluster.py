"""Ray as a cluster engine for MnasNet's trials: GPUs asked for only on CUDA (the remote
function's own options), a local Ray listening on 127.0.0.1 only (as Ray and the sockets of
its processes say), a token-authenticated cluster joined with its token and refused in one
line without it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from hwnas.search.base import SearchError
from hwnas.search.mnasnet import MnasConfig
from hwnas.search.mnasnet.pool import task_options
from hwnas.search.mnasnet.trials import run_child


def test_gpus_per_trial_is_checked():
    with pytest.raises(SearchError, match="a fraction in \\(0, 1\\] or a whole number"):
        MnasConfig(target_ms=1, out="x", gpus_per_trial=1.5)
    assert MnasConfig(target_ms=1, out="x", gpus_per_trial=0.25).gpus_per_trial == 0.25


@pytest.mark.parametrize(
    "accelerator, gpus, want",
    [("cuda", 0.25, 0.25), ("cuda", 2.0, 2.0), ("cpu", 0.25, None), ("mps", 1.0, None)],
)
def test_ray_trials_ask_for_gpus_only_on_cuda(accelerator, gpus, want):
    """The options of the remote function itself (Ray's own record, no runtime needed)."""
    ray = pytest.importorskip("ray")
    task = ray.remote(**task_options(accelerator, gpus))(run_child)
    opts = task._default_options
    assert opts.get("num_gpus") == want
    assert opts["num_cpus"] == 1 and opts["max_retries"] == 0


LOCAL_RAY = r"""
import json, os, sys
import ray, psutil  # psutil: Ray's own copy
from hwnas.search.mnasnet.pool import RayPool
from hwnas.search.base import SearchError

pool = RayPool(2, None, accelerator="cpu")
node = ray._private.worker._global_node
pids = {os.getpid()}
for infos in node.all_processes.values():
    for info in infos:
        p = psutil.Process(info.process.pid)
        pids |= {p.pid, *(c.pid for c in p.children(recursive=True))}
listen = sorted(
    {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("inet")
     if c.status == psutil.CONN_LISTEN and c.pid in pids}
)
out = {
    "gcs": ray.get_runtime_context().gcs_address,
    "node_ip": node.node_ip_address,
    "nodes": [n["NodeManagerAddress"] for n in ray.nodes()],
    "listen": listen,
    "options": pool.task._default_options,
    "accelerator": pool.accelerator,
    "auto": pool._cluster_accelerator("auto", 1.0, None),
}
try:
    pool._cluster_accelerator("cuda", 0.5, None)
except SearchError as e:
    out["cuda"] = str(e)
pool.close()
out["after"] = ray.is_initialized()
print("RESULT " + json.dumps(out))
"""


def _python(code: str, timeout: float, **env) -> str:
    """``code`` in a fresh interpreter (Ray's settings and environment stay there), its
    stdout; bounded by ``timeout`` seconds."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_local_ray_listens_on_loopback_only():
    """A local Ray started by hwnas: the addresses Ray reports (GCS, node, raylets) and every
    socket its processes listen on are 127.0.0.1; its trials ask for no GPU on the CPU."""
    pytest.importorskip("ray")
    t0 = time.monotonic()
    out = _python(LOCAL_RAY, timeout=240)
    got = json.loads(out.split("RESULT ", 1)[1])
    assert got["gcs"].rsplit(":", 1)[0] == "127.0.0.1"
    assert got["node_ip"] == "127.0.0.1" and set(got["nodes"]) == {"127.0.0.1"}
    gcs_port = int(got["gcs"].rsplit(":", 1)[1])
    assert gcs_port in {port for _, port in got["listen"]}  # the scan sees Ray's sockets
    assert {ip for ip, _ in got["listen"]} <= {"127.0.0.1", "::ffff:127.0.0.1"}, got["listen"]
    assert "num_gpus" not in got["options"] and got["accelerator"] == got["auto"] == "cpu"
    assert got["cuda"] == (
        "--accelerator cuda: the local Ray runtime has 0 GPU(s), a trial asks for 0.5 "
        "(--gpus-per-trial)"
    )
    assert got["after"] is False
    assert time.monotonic() - t0 < 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


JOIN = r"""
import sys, time
from hwnas.search.mnasnet.pool import RayPool
from hwnas.search.base import SearchError
t0 = time.monotonic()
try:
    pool = RayPool(1, sys.argv[1], timeout_s=15)
    print("JOINED", pool.name)
    pool.close()
except SearchError as e:
    print("REFUSED", str(e))
print("SECONDS", time.monotonic() - t0)
"""


def test_token_cluster_joined_with_its_token_refused_without(tmp_path):
    """`ray start --head` with token authentication (on 127.0.0.1, its own home): hwnas
    joins it with RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, and without them gets one line
    naming those variables, within the probe's bound."""
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")  # Ray's own copy, once ray is imported
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="hwr", dir="/tmp")  # short: Ray's socket paths live there
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": "hwnas-test-token-0123456789abcdef",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # the head on 127.0.0.1
    }
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=1"]
        + ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        addr = f"127.0.0.1:{port}"
        code = JOIN.replace("sys.argv[1]", repr(addr))
        without = {"HOME": str(tmp_path), "RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": ""}
        refused = _python(code, timeout=120, **without)
        assert "REFUSED --ray-address " + addr + ": the cluster refused the token;" in refused
        assert "RAY_AUTH_MODE=token" in refused and "RAY_AUTH_TOKEN" in refused
        assert float(refused.split("SECONDS ")[1]) < 15
        joined = _python(
            code,
            timeout=120,
            **{k: env[k] for k in ("HOME", "RAY_AUTH_MODE")},
            RAY_AUTH_TOKEN=env["RAY_AUTH_TOKEN"],
        )
        assert "JOINED ray cluster " + addr in joined, joined
    finally:
        procs = psutil.Process(head.pid).children(recursive=True)
        head.terminate()
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            head.kill()
        for p in procs:
            if p.is_running():
                p.kill()
        shutil.rmtree(temp, ignore_errors=True)
