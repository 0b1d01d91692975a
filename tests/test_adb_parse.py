"""benchmark_model output parsing, core masks and the stand-in's shell parser (no device)."""
# ruff: noqa: E501  (the samples keep benchmark_model's long output lines whole)

import pytest

from hwnas.device_profiler.adb.backend import _split_exit
from hwnas.device_profiler.adb.device import core_mask, parse_cores
from hwnas.device_profiler.adb.parse import parse_output
from hwnas.errors import HwnasError
from hwnas.testing.adb_standin import sh

pytestmark = pytest.mark.device

MODERN = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Min num runs: [50]
INFO: Min runs duration (seconds): [1]
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/hwnas_b.tflite]
INFO: Use xnnpack: [1]
INFO: Loaded model /data/local/tmp/hwnas_b.tflite
INFO: Initialized session in 12.5ms.
INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=12 first=2210 curr=1890 min=1870 max=2210 avg=1931.5 std=88 p5=1870 median=1901 p95=2210

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=1795 curr=1802 min=1770 max=1950 avg=1810.25 std=31 p5=1774 median=1805 p95=1890

INFO: Inference timings in us: Init: 12500, First inference: 2210, Warmup (avg): 1931.5, Inference (avg): 1810.25
INFO: Memory footprint delta from the start of the tool (MB): init=3.1 overall=3.4
"""

V2019 = """\
STARTING!
Loaded model /data/local/tmp/m.tflite
Initialized session in 3.2ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=40 first=14000 curr=12500 min=12400 max=14000 avg=12650.2 std=300

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=80 first=12600 curr=12450 min=12380 max=13100 avg=1.2555e+04 std=120

Inference timings in us: Init: 3200, First inference: 14000, Warmup (avg): 12650.2, Inference (avg): 12555
"""

LEGACY = """\
STARTING!
Num threads: [1]
Unconsumed cmdline flags: --warmup_min_secs=0.5
Loaded model /data/local/tmp/m.tflite
resolved reporter
Initialized session in 19.5ms
Running benchmark for at least 1 iterations and at least 0.5 seconds
count=1 curr=680250

Running benchmark for at least 50 iterations and at least 1 seconds
count=50 first=677001 curr=676500 min=676100 max=679900 avg=677300 std=410

Average inference timings in us: Warmup: 680250, Init: 19500, no stats: 677300
"""

ALL_SAME = """\
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=95

INFO: Running benchmark for at least 20 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=20 curr=93(all same)

INFO: Inference timings in us: Init: 800, First inference: 95, Warmup (avg): 95, Inference (avg): 93
"""

LOGCAT_SUMMARY_ONLY = (
    "07-14 13:14:56.521 22838 22838 I tflite  : Average inference timings in us: "
    "Warmup: 5100.5, Init: 900, no stats: 4990.75\r\n"
)


@pytest.mark.parametrize(
    "text, avg, count, median",
    [
        (MODERN, 1810.25, 50, 1805.0),
        (V2019, 12555.0, 80, None),
        (LEGACY, 677300.0, 50, None),
        (ALL_SAME, 93.0, 20, None),
        (LOGCAT_SUMMARY_ONLY, 4990.75, 0, None),
        (MODERN.replace("\n", "\r\n"), 1810.25, 50, 1805.0),
    ],
    ids=["modern", "v2019-scientific", "legacy-no-stats", "all-same", "summary-only", "crlf"],
)
def test_each_output_variant(text, avg, count, median):
    inv = parse_output(text, model="b.tflite", exit_code=0)
    assert inv.avg_us == pytest.approx(avg)
    assert inv.count == count
    assert inv.median_us == median


def test_takes_the_timed_line_not_the_warmup_line():
    inv = parse_output(MODERN)
    assert inv.first_us == 1795 and inv.min_us == 1770 and inv.warmup_avg_us == 1931.5
    assert inv.init_us == 12500


def test_all_same_has_no_spread():
    inv = parse_output(ALL_SAME)
    assert (inv.min_us, inv.max_us, inv.std_us) == (93.0, 93.0, 0.0)


@pytest.mark.parametrize(
    "text, exit_code, expected",
    [
        (
            "ERROR: Could not open '/data/local/tmp/hwnas_k3.tflite'.\n",
            1,
            "k3.tflite: benchmark_model could not open the model file",
        ),
        (
            "STARTING!\nFailed to load model /data/local/tmp/hwnas_k3.tflite\n",
            1,
            "k3.tflite: benchmark_model could not load the model",
        ),
        (
            "/system/bin/sh: /data/local/tmp/benchmark_model: not found\n",
            127,
            "k3.tflite: benchmark_model is missing on the device; pass --benchmark-binary PATH",
        ),
        (
            "/system/bin/sh: /data/local/tmp/benchmark_model: can't execute: Permission denied\n",
            126,
            "k3.tflite: benchmark_model is not executable (permission denied)",
        ),
        (
            "STARTING!\nSegmentation fault\n",
            139,
            "k3.tflite: benchmark_model exited with status 139",
        ),
        ("STARTING!\n", 0, "k3.tflite: no timings found in benchmark_model's output"),
    ],
    ids=["could-not-open", "not-loadable", "binary-missing", "permission", "crash", "truncated"],
)
def test_failures_name_the_model(text, exit_code, expected):
    with pytest.raises(HwnasError) as e:
        parse_output(text, model="k3.tflite", exit_code=exit_code)
    msg = str(e.value)
    assert msg.startswith(expected)
    assert "\n" not in msg


def test_split_exit_takes_the_last_marker():
    out, rc = _split_exit("count=1 curr=5\r\n__hwnas_exit=0\r\n")
    assert rc == 0 and "__hwnas_exit" not in out
    assert _split_exit("no marker") == ("no marker", None)


@pytest.mark.parametrize(
    "cores, mask", [((2, 3), "c"), ((0,), "1"), ((4, 5, 6, 7), "f0"), ((3, 2, 3), "c")]
)
def test_core_mask(cores, mask):
    assert core_mask(cores) == mask


def test_parse_cores():
    assert parse_cores("2,3") == (2, 3)
    assert parse_cores("0,4-7") == (0, 4, 5, 6, 7)
    with pytest.raises(
        HwnasError, match=r"^--cores '2,9' names core 9 but the phone has cores 0-3$"
    ):
        parse_cores("2,9", 4)
    with pytest.raises(HwnasError, match=r"is not a core list"):
        parse_cores("big", 4)


@pytest.mark.parametrize(
    "line, syntax",
    [
        ("echo a; echo b", []),
        ("taskset c '/x/a; reboot;.tflite'", []),
        ("cat /x/$(reboot).tflite", ["$( ) command substitution"]),
        ("cat /x/`reboot`.tflite", ["backtick command substitution"]),
        ('cat "/x/$(reboot).tflite"', ["command substitution inside double quotes"]),
        ("cat a | sh", ["unquoted '|'"]),
    ],
)
def test_standin_shell_flags_unquoted_syntax(line, syntax):
    assert sh.parse(line).syntax == syntax


def test_standin_shell_runs_sequences_like_sh():
    ran = []

    def runner(argv):
        ran.append(argv)
        return "", 1 if argv[0] == "false" else 0

    out, rc, _ = sh.run_line(
        "false && echo no; false || echo 'yes it'; echo $?", runner, lambda p: []
    )
    assert ran == [["false"], ["false"], ["echo", "yes it"], ["echo", "0"]]


def test_the_parameters_the_binary_echoed_and_the_flags_it_did_not_know():
    """benchmark_model logs its parameters as it understood the flags (``Name: [value]``)
    and warns about flags an older build does not know: both are kept for the provenance."""
    from hwnas.device_profiler.adb.parse import parameters

    inv = parse_output(MODERN)
    assert dict(inv.params) == {
        "Log parameter values verbosely": "0",
        "Min num runs": "50",
        "Min runs duration (seconds)": "1",
        "Num threads": "1",
        "Graph": "/data/local/tmp/hwnas_b.tflite",
        "Use xnnpack": "1",
    }
    assert inv.unconsumed is None
    old = parse_output(LEGACY)
    assert dict(old.params) == {"Num threads": "1"}
    assert old.unconsumed == "--warmup_min_secs=0.5"
    assert parameters(V2019) == {} and parse_output(V2019).unconsumed is None
    assert parameters(MODERN.replace("\n", "\r\n"))["Num threads"] == "1"


# --------------------------------------------------------------------------- op profiles
# Per-operator profiles in the layouts benchmark_model has printed (tab-padded columns).
_INIT_SECTION = """\
INFO: Profiling Info for Benchmark Initialization:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t ModifyGraphWithDelegate\t    6.348\t    6.348\t 55.640%\t 55.640%\t  7148.000\t        1\tModifyGraphWithDelegate/0
\t         AllocateTensors\t    5.061\t    5.061\t 44.360%\t100.000%\t 10292.000\t        1\tAllocateTensors/0

Timings (microseconds): count=1 curr=11409
Memory (bytes): count=0
2 nodes observed

"""
OPS_XNNPACK = (
    MODERN
    + _INIT_SECTION
    + """\
INFO: Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t   TfLiteXNNPackDelegate\t    1.900\t    1.802\t100.000%\t100.000%\t     0.000\t        1\t[StatefulPartitionedCall:0]:6

============================== Top by Computation Time ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t   TfLiteXNNPackDelegate\t    1.900\t    1.802\t100.000%\t100.000%\t     0.000\t        1\t[StatefulPartitionedCall:0]:6

Number of nodes executed: 1
============================== Summary by node type ==============================
\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
\t   TfLiteXNNPackDelegate\t        1\t     1.802\t   100.000%\t   100.000%\t     0.000\t        1

Timings (microseconds): count=50 first=1900 curr=1802 min=1770 max=1950 avg=1802 std=31
Memory (bytes): count=0
1 nodes observed

Delegate internal: 
============================== Run Order ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\tConvolution (NHWC, QC8) IGEMM\t    0.700\t    0.650\t 40.000%\t 40.000%\t     0.000\t        1\tDelegate/Convolution (NHWC, QC8) IGEMM:0
\tConvolution (NHWC, QC8) DWConv\t    0.400\t    0.380\t 23.000%\t 63.000%\t     0.000\t        1\tDelegate/Convolution (NHWC, QC8) DWConv:1
\t           Add (ND, QS8)\t    0.050\t    0.048\t  3.000%\t 66.000%\t     0.000\t        2\tDelegate/Add (ND, QS8):2

============================== Top by Computation Time ==============================
\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\tConvolution (NHWC, QC8) IGEMM\t    0.700\t    0.650\t 40.000%\t 40.000%\t     0.000\t        1\tDelegate/Convolution (NHWC, QC8) IGEMM:0
"""
)
OPS_START_COLUMN = (
    V2019
    + """\
Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.000\t    9.100\t    8.900\t 71.000%\t 71.000%\t     0.000\t        1\t[model/conv2d/Relu6]:0
\t       DEPTHWISE_CONV_2D\t            8.905\t    3.100\t    3.000\t 24.000%\t 95.000%\t     0.000\t        1\t[model/dw/Relu6]:1
\t                    MEAN\t           11.910\t    0.700\t    0.650\t  5.000%\t100.000%\t     0.000\t        1\t[model/pool/Mean]:2

============================== Top by Computation Time ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.000\t    9.100\t    8.900\t 71.000%\t 71.000%\t     0.000\t        1\t[model/conv2d/Relu6]:0
"""
)
OPS_CSV = """\
INFO: Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
node type, first, avg_ms, %, cdf%, mem KB, times called, name
CONV_2D, 0.123, 0.110, 61.000%, 61.000%, 0, 1, [a/b;c/d]:0
Convolution (NHWC, QC8) IGEMM, 0.08, 0.07, 39.000%, 100.000%, 0, 1, Delegate/Convolution (NHWC, QC8) IGEMM:3
"""


def test_op_profile_modern_with_xnnpack_operators():
    from hwnas.device_profiler.adb.parse import op_profile

    rows = op_profile(OPS_XNNPACK)
    assert [(r.node_type, r.delegate, r.node_index) for r in rows] == [
        ("TfLiteXNNPackDelegate", False, 6),
        ("Convolution (NHWC, QC8) IGEMM", True, 0),
        ("Convolution (NHWC, QC8) DWConv", True, 1),
        ("Add (ND, QS8)", True, 2),
    ]  # the initialisation's nodes and the by-time tables are not rows
    assert rows[0].avg_ms == 1.802 and rows[1].first_ms == 0.7 and rows[3].times_called == 2
    assert parse_output(OPS_XNNPACK).avg_us == 1810.25  # the timings parse as before


def test_op_profile_with_the_older_start_column_and_in_csv():
    from hwnas.device_profiler.adb.parse import op_profile

    rows = op_profile(OPS_START_COLUMN)
    assert [(r.node_type, r.avg_ms, r.first_ms, r.name) for r in rows] == [
        ("CONV_2D", 8.9, 9.1, "[model/conv2d/Relu6]:0"),
        ("DEPTHWISE_CONV_2D", 3.0, 3.1, "[model/dw/Relu6]:1"),
        ("MEAN", 0.65, 0.7, "[model/pool/Mean]:2"),
    ]
    rows = op_profile(OPS_CSV)
    assert [(r.node_type, r.avg_ms, r.node_index) for r in rows] == [
        ("CONV_2D", 0.11, 0),
        ("Convolution (NHWC, QC8) IGEMM", 0.07, 3),
    ]
    assert rows[0].name == "[a/b;c/d]:0"
    assert op_profile(MODERN) == [] and op_profile(LEGACY) == []  # no profile asked
