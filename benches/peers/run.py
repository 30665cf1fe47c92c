#!/usr/bin/env python3
"""Sinter side by side with onnxruntime, PyTorch eager and torch.compile (issue 8).

For every model of the zoo: define it in PyTorch (seeded random weights, eval mode), export it
to ONNX (TorchScript exporter, opset 17, `dynamo=False`), check Sinter's output against
onnxruntime's on the same seeded input (`sinter run`), then time, interleaved in rounds
(round 1: Sinter, onnxruntime, eager, torch.compile at each thread count; round 2: the same;
...), inference latency at each thread count:

  Sinter         `sinter bench MODEL.onnx --json --threads T --runs N --inputs IN.npz --optimize
                 --fast-math` (one process per round; median_ms and compile_ms come from its JSON;
                 --fast-math computes exp/sigmoid/tanh by vectorised polynomials within 4 ULP,
                 as onnxruntime's MLAS kernels also approximate them)
  onnxruntime    InferenceSession, intra_op_num_threads = T, inter_op 1, sequential
  torch eager    torch.set_num_threads(T), torch.no_grad()
  torch.compile  default mode, compiled under torch.set_num_threads(T) (its generated code
                 fixes the thread count when it is compiled); compile time = first call

Each round times N runs after warm-up and keeps their median; a peer's figure is the median of
its round medians. Writes a Markdown table to stdout and to results/latest.md (raw figures in
results/latest.json). Models are written to models/ (git-ignored; VGG-16 is 0.5 GB).

Run with a Python that has torch, torchvision, onnx and onnxruntime (setup.sh makes one in
.venv). `--help` lists the flags (models, threads, rounds, runs).
"""

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Cold torch.compile compile times: a fresh Inductor cache for this run (set before torch loads).
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="peers-inductor-"))
# PyTorch's OpenMP threads (and MKL's) spin-wait by default; on a shared 2-vCPU machine two
# spinning runtimes make eager at 2 threads ~30x slower (36 ms instead of 1.2 ms for the MLP).
# Passive waiting is the generous setting for the peer; set OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

# ---------------------------------------------------------------------------------------------
# The zoo. Each entry: a constructor of the eval-mode module, the input shape, a description.


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x):
        return self.net(x)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.f5 = nn.Linear(16 * 5 * 5, 120)
        self.f6 = nn.Linear(120, 84)
        self.out = nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.c3(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.relu(self.f5(x))
        x = torch.relu(self.f6(x))
        return self.out(x)


class AlexNet(nn.Module):
    """torchvision's AlexNet, every channel and hidden width scaled by `width` (1.0: the same)."""

    def __init__(self, width=1.0):
        super().__init__()
        c = [max(1, int(round(v * width))) for v in (64, 192, 384, 256, 256, 4096)]
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(c[4] * 6 * 6, c[5]), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(c[5], c[5]), nn.ReLU(inplace=True), nn.Linear(c[5], 1000),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class Inception(nn.Module):
    """One GoogLeNet module as in the paper (conv + bias + relu, a real 5x5 branch)."""

    def __init__(self, cin, c1, r3, c3, r5, c5, pp):
        super().__init__()
        cr = lambda i, o, k: [nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU(inplace=True)]  # noqa: E731
        self.b1 = nn.Sequential(*cr(cin, c1, 1))
        self.b3 = nn.Sequential(*cr(cin, r3, 1), *cr(r3, c3, 3))
        self.b5 = nn.Sequential(*cr(cin, r5, 1), *cr(r5, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), *cr(cin, pp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class InceptionStack(nn.Module):
    """The nine modules of GoogLeNet (3a..5b) from 28x28x192, max pools 2x2 between stages,
    the same stack as benches/rewrite.rs."""

    MODULES = [
        [64, 96, 128, 16, 32, 32], [128, 128, 192, 32, 96, 64],
        [192, 96, 208, 16, 48, 64], [160, 112, 224, 24, 64, 64], [128, 128, 256, 24, 64, 64],
        [112, 144, 288, 32, 64, 64], [256, 160, 320, 32, 128, 128],
        [256, 160, 320, 32, 128, 128], [384, 192, 384, 48, 128, 128],
    ]

    def __init__(self):
        super().__init__()
        layers, cin = [], 192
        for i, m in enumerate(self.MODULES):
            if i in (2, 7):
                layers.append(nn.MaxPool2d(2, 2))
            layers.append(Inception(cin, *m))
            cin = m[0] + m[2] + m[4] + m[5]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class RNNNet(nn.Module):
    def __init__(self, i=128, h=256):
        super().__init__()
        self.rnn = nn.RNN(i, h)
        self.head = nn.Linear(h, 10)

    def forward(self, x):  # x: [seq, batch, features]
        y, _ = self.rnn(x)
        return self.head(y[-1])


class LSTMNet(nn.Module):
    def __init__(self, i=128, h=256):
        super().__init__()
        self.lstm = nn.LSTM(i, h, batch_first=True)
        self.head = nn.Linear(h, 10)

    def forward(self, x):  # x: [batch, seq, features]
        y, _ = self.lstm(x)
        return self.head(y[:, -1, :])


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU())
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 3, 2, 1, output_padding=1), nn.Sigmoid(),
        )

    def forward(self, x):
        return self.dec(self.enc(x))


class DCGANGenerator(nn.Module):
    """The DCGAN generator (nz 100, ngf 64, 64x64x3 images), batch norms with random statistics."""

    def __init__(self, nz=100, ngf=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z)


def tv(name):
    def make():
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return make


def zoo(args):
    return {
        "mlp": (MLP, [64, 784], "MLP 784-512-256-10, batch 64"),
        "lenet5": (LeNet5, [64, 1, 32, 32], "LeNet-5 1x32x32, batch 64"),
        "alexnet": (lambda: AlexNet(args.alexnet_width), [1, 3, 224, 224],
                    f"AlexNet 224, batch 1" + ("" if args.alexnet_width == 1.0 else f", width x{args.alexnet_width}")),
        "vgg16": (tv("vgg16"), [1, 3, 224, 224], "VGG-16 224, batch 1 (torchvision)"),
        "resnet18": (tv("resnet18"), [1, 3, 224, 224], "ResNet-18 224, batch 1 (torchvision)"),
        "resnet50": (tv("resnet50"), [1, 3, 224, 224], "ResNet-50 224, batch 1 (torchvision)"),
        "inception": (InceptionStack, [1, 192, 28, 28], "Inception-v1 modules 3a-5b from 28x28x192, batch 1"),
        "rnn": (RNNNet, [32, 16, 128], "RNN tanh 128->256, 32 steps, batch 16, linear head"),
        "lstm": (LSTMNet, [16, 32, 128], "LSTM 128->256, 32 steps, batch 16, linear head"),
        "autoencoder": (AutoEncoder, [64, 1, 28, 28], "conv autoencoder 1-32-64 / convT 64-32-1, 28x28, batch 64"),
        "dcgan": (DCGANGenerator, [8, 100, 1, 1], "DCGAN generator nz 100, ngf 64, 64x64, batch 8"),
    }


def randomize_bn(m):
    """Non-trivial running statistics, so batch norm does real work (as make_fixtures.py)."""
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    return m


# ---------------------------------------------------------------------------------------------
# Timing.


def time_runs(f, n, warmup):
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def first_line(s):
    for line in s.strip().splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return "(no message)"


def sinter_flags(args):
    """The optimisation switches of `sinter bench` and `sinter run` this run uses."""
    return (["--optimize"] if args.optimize else []) + (["--fast-math"] if args.fast_math else [])


def sinter_bench(args, onnx_path, npz_path, threads, runs):
    cmd = [args.sinter, "bench", onnx_path, "--json", "--threads", str(threads), "--runs", str(runs),
           "--inputs", npz_path] + sinter_flags(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.sinter_timeout)
    if p.returncode != 0:
        raise RuntimeError(first_line(p.stderr or p.stdout))
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON in `sinter bench` output: " + first_line(p.stdout))


def sinter_check(args, onnx_path, npz_path, ref, workdir):
    """Sinter's outputs (`sinter run`, with `--optimize` unless `--no-optimize`) against onnxruntime's: max abs error and
    max abs error relative to the largest reference magnitude, over all outputs."""
    out = os.path.join(workdir, "sinter_out.npz")
    cmd = [args.sinter, "run", onnx_path, "--inputs", npz_path, "--out", out] + sinter_flags(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.sinter_timeout)
    if p.returncode != 0:
        raise RuntimeError(first_line(p.stderr or p.stdout))
    got = dict(np.load(out))
    abs_err, scale = 0.0, 0.0
    for name, r in ref.items():
        if name not in got:
            raise RuntimeError(f"output `{name}` missing from Sinter's outputs ({sorted(got)})")
        g = got[name]
        if g.shape != r.shape:
            raise RuntimeError(f"output `{name}`: shape {g.shape}, onnxruntime {r.shape}")
        if not np.all(np.isfinite(g)):
            raise RuntimeError(f"output `{name}`: non-finite values")
        abs_err = max(abs_err, float(np.max(np.abs(g.astype(np.float64) - r))))
        scale = max(scale, float(np.max(np.abs(r))))
    return abs_err, abs_err / scale if scale > 0 else abs_err


# ---------------------------------------------------------------------------------------------


def export_onnx(model, x, path):
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.from_numpy(x),), f, opset_version=17, dynamo=False,
                          input_names=["x"], output_names=["y"])
    with open(path, "wb") as fh:
        fh.write(f.getvalue())
    return f.getvalue()


def ort_session(model_bytes, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    s = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    return s, (time.perf_counter() - t0) * 1e3


def bench_model(key, spec, args, workdir):
    ctor, shape, desc = spec
    rec = {"model": key, "desc": desc, "shape": shape, "threads": {}, "errors": {}}
    print(f"== {key}: {desc}", file=sys.stderr, flush=True)
    torch.manual_seed(0)
    model = randomize_bn(ctor()).eval()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    onnx_path = os.path.join(args.models_dir, key + ".onnx")
    npz_path = os.path.join(args.models_dir, key + ".inputs.npz")
    t0 = time.perf_counter()
    if args.reuse and os.path.exists(onnx_path) and os.path.exists(npz_path):
        with open(onnx_path, "rb") as fh:
            model_bytes = fh.read()
    else:
        model_bytes = export_onnx(model, x, onnx_path)
        np.savez(npz_path, x=x)
    rec["export_s"] = time.perf_counter() - t0

    # Reference output and correctness.
    sess1, _ = ort_session(model_bytes, 1)
    ref = dict(zip([o.name for o in sess1.get_outputs()], sess1.run(None, {"x": x})))
    del sess1
    try:
        rec["max_abs_err"], rec["max_rel_err"] = sinter_check(args, onnx_path, npz_path, ref, workdir)
    except Exception as e:  # noqa: BLE001
        rec["errors"]["check"] = str(e)

    xt = torch.from_numpy(x)
    with torch.no_grad():
        eager_out = model(xt).numpy()
    rec["torch_vs_ort_abs"] = float(np.max(np.abs(eager_out - ref["y"])))

    # Per-thread-count state: ORT sessions, compiled modules.
    sessions, compiled = {}, {}
    rec["ort_session_ms"] = {}
    for t in args.threads:
        sessions[t], rec["ort_session_ms"][t] = ort_session(model_bytes, t)
        rec["threads"][t] = {"sinter": [], "ort": [], "eager": [], "compile": [], "sinter_compile_ms": []}
    if args.torch_compile:
        for t in args.compile_threads:
            if t not in args.threads:
                continue
            torch.set_num_threads(t)
            try:
                torch._dynamo.reset()
                cm = torch.compile(model)
                t0 = time.perf_counter()
                with torch.no_grad():
                    cm(xt)
                rec.setdefault("torch_compile_s", {})[t] = time.perf_counter() - t0
                compiled[t] = cm
            except Exception as e:  # noqa: BLE001
                rec["errors"]["torch.compile"] = first_line(str(e))
                traceback.print_exc(file=sys.stderr)
                break

    # Runs per round: each peer's own count, about --round-ms of timing, from a quick
    # onnxruntime estimate at first and then from that peer's previous round (Sinter starts at
    # --min-runs: it can be 100x slower than the others on a model it handles badly).
    feed = {"x": x}
    est = time_runs(lambda: sessions[args.threads[0]].run(None, feed), 2, 1)

    def nruns(ms):
        return int(min(args.runs, max(args.min_runs, args.round_ms // max(ms, 1e-3))))

    runs = {(p, t): nruns(est) for p in ("ort", "eager", "compile") for t in args.threads}
    runs.update({("sinter", t): args.min_runs for t in args.threads})
    rec["runs_per_round"] = runs  # updated below; the table shows the last round's counts

    def timed(peer, t, f):
        n = runs[(peer, t)]
        m = time_runs(f, n, max(1, min(3, n)))
        runs[(peer, t)] = nruns(m)
        return m

    for r in range(args.rounds):
        for t in args.threads:
            cell = rec["threads"][t]
            if "sinter" not in rec["errors"]:
                try:
                    j = sinter_bench(args, onnx_path, npz_path, t, runs[("sinter", t)])
                    cell["sinter"].append(j["median_ms"])
                    cell["sinter_compile_ms"].append(j["compile_ms"])
                    runs[("sinter", t)] = nruns(j["median_ms"])
                    if r == 0:
                        cell["sinter_kernels"] = j.get("kernels", [])
                except Exception as e:  # noqa: BLE001
                    rec["errors"]["sinter"] = str(e)
            s = sessions[t]
            cell["ort"].append(timed("ort", t, lambda: s.run(None, feed)))
            torch.set_num_threads(t)
            with torch.no_grad():
                cell["eager"].append(timed("eager", t, lambda: model(xt)))
                if t in compiled:
                    cm = compiled[t]
                    cell["compile"].append(timed("compile", t, lambda: cm(xt)))
        print(f"   round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    rec["runs_per_round"] = {f"{p}@{t}": n for (p, t), n in runs.items()}

    for t, cell in rec["threads"].items():
        for k in ("sinter", "ort", "eager", "compile", "sinter_compile_ms"):
            cell[k + "_med"] = statistics.median(cell[k]) if cell[k] else None
    del sessions, compiled, model
    torch._dynamo.reset()
    return rec


# ---------------------------------------------------------------------------------------------
# Training step: ir-spec/examples/lenet.sir (8x8 digits, batch 16, softmax cross-entropy) with
# `sinter bench --train`, against the same network and step in PyTorch eager.


class SirLeNet(nn.Module):
    """The network of ir-spec/examples/lenet.sir."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 16, 3, padding=1)
        self.f3 = nn.Linear(64, 32)
        self.f4 = nn.Linear(32, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.f4(torch.relu(self.f3(torch.flatten(x, 1))))


def bench_train(args):
    """One training step (forward, loss, backward, update), Adam, lr 0.01."""
    sir = os.path.join(ROOT, "ir-spec", "examples", "lenet.sir")
    rec = {"model": "lenet.sir (train step)", "desc": "ir-spec/examples/lenet.sir: 8x8 digits, batch 16, "
           "conv3x3(6)-pool-conv3x3(16)-pool-fc32-fc10, softmax cross-entropy, Adam",
           "threads": {}, "errors": {}}
    print(f"== train: {rec['desc']}", file=sys.stderr, flush=True)
    torch.manual_seed(0)
    model = SirLeNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.from_numpy(np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32))
    labels = torch.from_numpy(np.random.default_rng(1).integers(0, 10, 16))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        torch.softmax(logits, -1)  # lenet.sir also outputs the probabilities
        loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        opt.step()

    runs = {}
    for t in args.threads:
        rec["threads"][t] = {"sinter": [], "eager": [], "sinter_compile_ms": []}
        runs[("sinter", t)] = runs[("eager", t)] = args.runs
    for r in range(args.rounds):
        for t in args.threads:
            cell = rec["threads"][t]
            if "sinter" not in rec["errors"]:
                try:
                    cmd = [args.sinter, "bench", sir, "--train", "--optimizer", "adam", "--json", "--threads",
                           str(t), "--runs", str(runs[("sinter", t)])]
                    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.sinter_timeout)
                    if p.returncode != 0:
                        raise RuntimeError(first_line(p.stderr or p.stdout))
                    j = json.loads(next(line for line in p.stdout.splitlines() if line.startswith("{")))
                    cell["sinter"].append(j["median_ms"])
                    cell["sinter_compile_ms"].append(j["compile_ms"])
                except Exception as e:  # noqa: BLE001
                    rec["errors"]["sinter"] = str(e)
            torch.set_num_threads(t)
            cell["eager"].append(time_runs(step, runs[("eager", t)], 3))
    for cell in rec["threads"].values():
        for k in ("sinter", "eager", "sinter_compile_ms"):
            cell[k + "_med"] = statistics.median(cell[k]) if cell[k] else None
    return rec


def train_table(rec):
    lines = ["Training step, median ms: " + rec["desc"] + ". Sinter: `sinter bench lenet.sir --train "
             "--optimizer adam` (the step graph built by autodiff, compiled once). torch.compile is not "
             "timed on training yet.", "",
             "| model | T | Sinter | torch eager | Sinter/eager | Sinter compile ms |", "|---|---|---|---|---|---|"]
    for t, c in rec["threads"].items():
        s = c["sinter_med"]
        lines.append(f"| {rec['model']} | {t} | {fmt_ms(s) if s is not None else '**fails**'} | "
                     f"{fmt_ms(c['eager_med'])} | {ratio(s, c['eager_med'])} | {fmt_ms(c['sinter_compile_ms_med'])} |")
    for k, v in rec["errors"].items():
        lines.append(f"\n- {k}: `{v}`")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The table.


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def table(recs, args, header):
    lines = [header, ""]
    lines.append("Inference latency, median ms (lower is better); ratio = Sinter / peer (<= 1.0: Sinter is "
                 "at least as fast).")
    lines.append("")
    lines.append("| model | T | Sinter | onnxruntime | torch eager | torch.compile | Sinter/ort | Sinter/eager "
                 "| Sinter/compile | Sinter compile ms | ort session ms | torch.compile s | max abs err (rel) vs ort |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    for rec in recs:
        err = rec["errors"]
        if "check" in err:
            check = "check failed"
        elif "max_abs_err" in rec:
            check = f"{rec['max_abs_err']:.1e} ({rec['max_rel_err']:.1e})"
            if rec["max_rel_err"] > args.tolerance:
                check = f"**wrong**: {check}"
                notes.append(f"- {rec['model']}: output differs from onnxruntime's: max abs error "
                             f"{rec['max_abs_err']:.2e}, {rec['max_rel_err']:.2e} of the largest output "
                             f"(tolerance {args.tolerance:g})")
        else:
            check = "-"
        if not rec["threads"]:
            lines.append(f"| {rec['model']} | - | **harness failed** |" + " - |" * 10)
        for t, c in rec["threads"].items():
            s = c["sinter_med"]
            sin = fmt_ms(s) if s is not None else "**fails**"
            tc = rec.get("torch_compile_s", {}).get(t)
            lines.append(
                f"| {rec['model']} | {t} | {sin} | {fmt_ms(c['ort_med'])} | {fmt_ms(c['eager_med'])} "
                f"| {fmt_ms(c['compile_med'])} | {ratio(s, c['ort_med'])} | {ratio(s, c['eager_med'])} "
                f"| {ratio(s, c['compile_med'])} | {fmt_ms(c['sinter_compile_ms_med'])} "
                f"| {fmt_ms(rec['ort_session_ms'][t])} | {'-' if tc is None else f'{tc:.1f}'} | {check} |")
        for k, v in err.items():
            notes.append(f"- {rec['model']}: {k}: `{v}`")
    lines.append("")
    lines.append("Models: " + "; ".join(f"{r['model']} = {r['desc']}" for r in recs) + ".")
    if notes:
        lines.append("")
        lines.append("Failures (first line of the error):")
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines) + "\n"


def machine_header(args, load_before):
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load_after = os.getloadavg()
    try:
        built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(args.sinter)))
    except OSError:
        built = "?"
    return (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, HEAD {commit}"
            f"{' (with uncommitted changes in the tree)' if dirty else ''}, sinter binary built {built}; {cpu}, {os.cpu_count()} vCPUs; "
            f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; torch {torch.__version__}, "
            f"onnxruntime {ort.__version__}, Python {platform.python_version()}; OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY')}; {args.rounds} interleaved rounds; Sinter flags: "
            f"{' '.join(sinter_flags(args)) or 'none'}.")


def keys_train_ok(args):
    """Whether this sinter has `bench --train` (the training-step bench)."""
    p = subprocess.run([args.sinter, "bench", "--help"], capture_output=True, text=True)
    return "--train" in p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="all", help="comma-separated keys (default all): " +
                    ",".join(zoo(argparse.Namespace(alexnet_width=1.0))))
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--runs", type=int, default=10, help="most timed runs per peer per round (default 10)")
    ap.add_argument("--min-runs", type=int, default=3, help="fewest timed runs per peer per round (default 3)")
    ap.add_argument("--round-ms", type=float, default=250.0,
                    help="aim for about this much timing per peer per round (default 250)")
    ap.add_argument("--no-train", dest="train", action="store_false",
                    help="skip the training-step comparison (lenet.sir, needs `sinter bench --train`)")
    ap.add_argument("--no-torch-compile", dest="torch_compile", action="store_false", help="skip torch.compile")
    ap.add_argument("--compile-threads", default="1",
                    help="thread counts at which to time torch.compile (default 1: it compiles once per count)")
    ap.add_argument("--alexnet-width", type=float, default=1.0, help="AlexNet width multiplier (default 1.0)")
    ap.add_argument("--sinter", help="the sinter binary (default: build it with cargo build --release -p sinter)")
    ap.add_argument("--sinter-timeout", type=float, default=600.0, help="seconds per sinter call")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest error relative to the largest output magnitude before a model is marked "
                         "wrong (default 1e-4)")
    ap.add_argument("--reuse", action="store_true", help="reuse models/*.onnx from an earlier run")
    ap.add_argument("--no-optimize", dest="optimize", action="store_false",
                    help="time and check Sinter without its graph optimiser (`--optimize` of sinter bench/run; "
                         "on by default, its time counted as compile time)")
    ap.add_argument("--no-fast-math", dest="fast_math", action="store_false",
                    help="time and check Sinter with exact exp/sigmoid/tanh calls instead of its vectorised "
                         "polynomials (`--fast-math` of sinter bench/run, on by default)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest"),
                    help="results path without extension (.md and .json are written)")
    args = ap.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    args.compile_threads = [int(t) for t in args.compile_threads.split(",")]
    args.models_dir = os.path.join(HERE, "models")
    os.makedirs(args.models_dir, exist_ok=True)

    models = zoo(args)
    keys = list(models) if args.models == "all" else args.models.split(",")
    for k in keys:
        if k not in models:
            ap.error(f"unknown model `{k}` (known: {', '.join(models)})")
    if not args.sinter:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        subprocess.run(["cargo", "build", "--release", "-p", "sinter"], cwd=ROOT, check=True)
        args.sinter = os.path.join(target, "release", "sinter")

    load_before = os.getloadavg()
    recs = []
    with tempfile.TemporaryDirectory() as workdir:
        for k in keys:
            try:
                recs.append(bench_model(k, models[k], args, workdir))
            except Exception as e:  # noqa: BLE001
                traceback.print_exc(file=sys.stderr)
                recs.append({"model": k, "desc": models[k][2], "threads": {}, "errors": {"harness": first_line(str(e))},
                             "ort_session_ms": {}})
    train = None
    if args.train and keys_train_ok(args):
        try:
            train = bench_train(args)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            print(f"training-step comparison failed: {first_line(str(e))}", file=sys.stderr)
    md = table(recs, args, machine_header(args, load_before))
    if train is not None:
        md += "\n" + train_table(train)
        recs.append(train)
    print(md)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".md", "w") as fh:
        fh.write(md)
    with open(args.out + ".json", "w") as fh:
        json.dump(recs, fh, indent=1, default=str)
    print(f"wrote {args.out}.md and .json", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
