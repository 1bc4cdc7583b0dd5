#!/usr/bin/python3
"""A PyTorch simulation of ternion's quantizer, to check ternion's integer pipeline against.

Written from the method (shared/fgq.md) and the semantics lib/quantize states, independently of
its code: it loads the embedded ONNX model with the `onnx` package, folds BatchNorm into the
convs, quantizes the weights (FGQ ternary / 4-bit / int8) the way `quantize()` does, calibrates
every quantized layer's input range by 'max' on the same calibration images, and evaluates the
model in torch with fake-quantized activations and dequantized weights on all 10,000 test images.
The figures go to data/fgq-simulation.json, which test/fgq-fidelity.test.ts compares with
ternion's own top-1 per mode (bound: 0.5 points).

Run with the Debian interpreter (python3-torch 1.13, python3-onnx, numpy):

  /usr/bin/python3 tools/simulate_fgq.py            # all modes, writes data/fgq-simulation.json
  /usr/bin/python3 tools/simulate_fgq.py --only ternary-n4-a8 --no-write

What is simulated (one layer = a Conv or Gemm/MatMul with constant weights; depthwise convs
stay fp32, as ternion's quantize option depthwise: 'float32' does; its default, int8 depthwise,
and Clip activations are not simulated, so compare MobileNet-style models with that option):
  - BN folding: w' = fp32(w * g / sqrt(var + eps)), b' = fp32(b * m + (beta - mean * m)),
    multiplier m in float64.
  - Edge layers (the first conv reached from the input through weightless ops, and the last
    Gemm/MatMul) keep int8 weights: per output channel s = fp32(max|w| / 127),
    q = round_half_away(w / s) in [-127, 127]. Mode 'int8' uses that for every layer.
  - Groups: N consecutive input channels at one kernel position of one output channel; each
    (co, kernel position) run of input channels is cut into groups of N, the last one shorter
    when N does not divide the channel count. 'filter': one group per output channel.
  - Ternary, exact threshold: the k largest |w| are kept, k maximising S_k^2 / k over the
    magnitudes sorted descending (float64 prefix sums), k only at the end of a run of equal
    magnitudes, the smallest k among equal maxima; alpha = S_k / k stored as fp32; a weight is
    +-1 when |w| >= the k-th magnitude. TWN: delta = 0.7 * mean|w| over the group, kept
    |w| > delta, alpha = their mean. 'ternary-asym': positive and negative weights solved
    separately (alpha_p, alpha_n). A group whose nonzero weights already take one positive and
    one negative magnitude (relative tolerance 1e-6) keeps them exactly (pre-ternarized).
  - 4-bit: per group s = fp32(max|w| / 7), q = round_half_away(w / s) in [-7, 7].
  - Activations: every quantized layer's input is fake-quantized with one scale / zero point
    per tensor from the calibration range (8-bit: [0, 255]; 4-bit: [0, 15]; lo = min(0, min),
    hi = max(0, max), min dropped for non-negative tensors), scale = fp32((hi - lo) / qmax),
    zp = round_half_even(-lo / scale); x -> (clamp(round_half_even(x / s), -zp, qmax - zp)) * s.
    The edge layers' inputs use the same activation bits as the rest.
  - Calibration: the first 256 images of data/fashion-mnist-calib-images.npy as pixels / 255
    (as `ternion demo` does); the fp32 (BN-folded) model's layer inputs give the ranges.
Everything else (pooling, residual adds, ReLU, normalization) is fp32, as in ternion.
Deterministic: one thread, no randomness.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "fashion-mnist-resnet.onnx")
DATA = os.path.join(REPO, "data")
OUT = os.path.join(DATA, "fgq-simulation.json")
CALIB_COUNT = 256
BATCH = 1000
PRETERNARY_TOLERANCE = 1e-6


# --------------------------------------------------------------------------- modes

def modes():
    """The modes simulated, named as the test names them; options are quantize()'s."""
    out = [dict(name="fp32", weights="fp32", groupSize=None, threshold=None, activationBits=None)]
    out.append(dict(name="int8-a8", weights="int8", groupSize=None, threshold=None, activationBits=8))
    for n in (16, 64):
        out.append(dict(name="int4-n%d-a8" % n, weights="int4", groupSize=n, threshold=None, activationBits=8))
    for weights in ("ternary", "ternary-asym"):
        for bits in (8, 4):
            for n in (4, 8, 16, 64, "filter"):
                out.append(dict(name="%s-n%s-a%d" % (weights, n, bits), weights=weights, groupSize=n,
                                threshold="exact", activationBits=bits))
    for n in (4, 16):
        out.append(dict(name="ternary-twn-n%d-a8" % n, weights="ternary", groupSize=n, threshold="twn", activationBits=8))
    return out


# --------------------------------------------------------------------------- rounding

def f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def round_half_away(x):
    """Nearest integer of float64 values, ties away from zero (exact: no x + 0.5)."""
    a = np.abs(x)
    r = np.floor(a)
    r = r + (a - r >= 0.5)
    return np.where(x < 0, -r, r)


def round_clamp(x, lo, hi):
    return np.clip(round_half_away(x), lo, hi)


# --------------------------------------------------------------------------- graph

class Node:
    def __init__(self, op, name, inputs, outputs, attrs):
        self.op, self.name, self.inputs, self.outputs, self.attrs = op, name, inputs, outputs, attrs


def load_graph(data):
    model = onnx.load_model_from_string(data)
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for i, n in enumerate(g.node):
        if n.domain not in ("", "ai.onnx"):
            raise SystemExit("unsupported domain %s on node %s" % (n.domain, n.name))
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        nodes.append(Node(n.op_type, n.name or "%s_%d" % (n.op_type, i), list(n.input), list(n.output), attrs))
    init_names = set(inits)
    graph_inputs = [i.name for i in g.input if i.name not in init_names]
    if len(graph_inputs) != 1:
        raise SystemExit("the model must have one input, has %d" % len(graph_inputs))
    return nodes, inits, graph_inputs[0], [o.name for o in g.output]


def fold_batch_norm(nodes, inits):
    """BatchNormalization folded into the Conv / Gemm before it (float64 factors, fp32 results)."""
    producer = {o: n for n in nodes for o in n.outputs}
    consumers = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    removed, replaced = set(), {}
    for bn in nodes:
        if bn.op != "BatchNormalization":
            continue
        p = producer.get(bn.inputs[0])
        if p is None or p.op not in ("Conv", "Gemm") or id(p) in replaced or len(consumers.get(bn.inputs[0], [])) != 1:
            continue
        if bn.attrs.get("training_mode", 0) != 0 or len([o for o in bn.outputs if o]) != 1:
            continue
        if not all(name in inits for name in bn.inputs[1:5]) or p.inputs[1] not in inits:
            continue
        scale, beta, mean, var = (inits[name].astype(np.float64) for name in bn.inputs[1:5])
        eps = float(np.float32(bn.attrs.get("epsilon", 1e-5)))
        mult = scale / np.sqrt(var + eps)
        offset = beta - mean * mult
        w = inits[p.inputs[1]]
        old_bias = inits[p.inputs[2]].astype(np.float64) if len(p.inputs) > 2 and p.inputs[2] else None
        if p.op == "Conv":
            if len(p.inputs) > 3 or w.shape[0] != mult.size:
                continue
            w2 = (w.astype(np.float64) * mult.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
            prev = 0.0 if old_bias is None else np.broadcast_to(old_bias, mult.shape)
            attrs = p.attrs
        else:
            if p.attrs.get("transB", 0):
                w2 = (w.astype(np.float64) * mult[:, None]).astype(np.float32)
            else:
                w2 = (w.astype(np.float64) * mult[None, :]).astype(np.float32)
            b_scale = float(np.float32(p.attrs.get("beta", 1.0)))
            prev = 0.0 if old_bias is None else np.broadcast_to(old_bias.reshape(-1), mult.shape) * b_scale
            attrs = dict(p.attrs, beta=1.0)
        b2 = (prev * mult + offset).astype(np.float32)
        wn, bname = p.inputs[1] + "_bn", p.name + "_bn_bias"
        inits[wn], inits[bname] = w2, b2
        replaced[id(p)] = Node(p.op, p.name, [p.inputs[0], wn, bname], [bn.outputs[0]], attrs)
        removed.add(id(bn))
    return [replaced.get(id(n), n) for n in nodes if id(n) not in removed]


class Layer:
    """A quantizable layer: output-major weights [Co, Cin, k...] and (Gemm) folded bias."""

    def __init__(self, node, kind, weights, bias):
        self.node, self.kind = node, kind
        self.weights = np.array(weights, dtype=np.float32, copy=True)  # writable, for torch.from_numpy
        self.bias = None if bias is None else np.array(bias, dtype=np.float32, copy=True)


def find_layers(nodes, inits):
    layers = []
    for n in nodes:
        if n.op == "Conv" and n.inputs[1] in inits:
            w = inits[n.inputs[1]]
            if w.dtype != np.float32 or not 3 <= w.ndim <= 5:
                continue
            if w.shape[1] == 1 and n.attrs.get("group", 1) > 1:
                continue  # depthwise: fp32 (ternion with depthwise: 'float32')
            b = inits[n.inputs[2]] if len(n.inputs) > 2 and n.inputs[2] else None
            layers.append(Layer(n, "conv", w, b))
        elif n.op in ("Gemm", "MatMul") and n.inputs[1] in inits:
            w = inits[n.inputs[1]]
            if w.dtype != np.float32 or w.ndim != 2:
                continue
            if n.op == "Gemm" and n.attrs.get("transA", 0):
                continue
            if not (n.op == "Gemm" and n.attrs.get("transB", 0)):
                w = np.ascontiguousarray(w.T)
            alpha = float(np.float32(n.attrs.get("alpha", 1.0))) if n.op == "Gemm" else 1.0
            if alpha != 1.0:
                w = (w.astype(np.float64) * alpha).astype(np.float32)
            bias = None
            if n.op == "Gemm" and len(n.inputs) > 2 and n.inputs[2]:
                if n.inputs[2] not in inits or inits[n.inputs[2]].size != w.shape[0]:
                    continue
                beta = float(np.float32(n.attrs.get("beta", 1.0)))
                bias = (inits[n.inputs[2]].reshape(-1).astype(np.float64) * beta).astype(np.float32)
            layers.append(Layer(n, "gemm", w, bias))
    return layers


def edge_layers(nodes, layers, graph_input):
    """The first conv reached from the input through weightless ops, and the last Gemm/MatMul."""
    edge = set()
    convs = {l.node.name for l in layers if l.kind == "conv"}
    reach = {graph_input}
    for n in nodes:
        if not n.inputs or n.inputs[0] not in reach:
            continue
        if n.op == "Conv":
            if n.name in convs:
                edge.add(n.name)
                break
            continue
        if n.op in ("ConvTranspose", "Gemm", "MatMul"):
            continue
        reach.update(n.outputs)
    gemms = [l for l in layers if l.kind == "gemm"]
    if gemms:
        edge.add(gemms[-1].node.name)
    return edge


# --------------------------------------------------------------------------- weights

def to_groups(w, n):
    """[Co, Cin, k...] -> groups [count, L] (zero-padded) and each group's real length.

    Layout of one output channel: kernel position outer, input channel inner; each kernel
    position's Cin channels cut into groups of n (the last shorter). n = 'filter': one group.
    """
    co, cin = w.shape[0], w.shape[1]
    s = int(np.prod(w.shape[2:], dtype=np.int64))
    rows = w.reshape(co, cin, s).transpose(0, 2, 1)  # [co, s, cin]
    if n == "filter":
        return np.ascontiguousarray(rows.reshape(co, s * cin)), np.full(co, s * cin), None
    p = -(-cin // n) * n
    padded = np.zeros((co, s, p), dtype=w.dtype)
    padded[:, :, :cin] = rows
    lengths = np.minimum(n, cin - np.arange(p // n) * n)
    return padded.reshape(-1, n), np.tile(lengths, co * s), p


def from_groups(groups, shape, n, p):
    co, cin = shape[0], shape[1]
    s = int(np.prod(shape[2:], dtype=np.int64))
    if n == "filter":
        rows = groups.reshape(co, s, cin)
    else:
        rows = groups.reshape(co, s, p)[:, :, :cin]
    return np.ascontiguousarray(rows.transpose(0, 2, 1)).reshape(shape)


def last_sum(a):
    """Sequential (left to right) float64 sums along axis 1."""
    return np.cumsum(a, axis=1)[:, -1] if a.shape[1] else np.zeros(a.shape[0])


def solve_exact(mags):
    """Per row of non-negative magnitudes (zeros ignored): alpha and cutoff of the exact threshold."""
    g, length = mags.shape
    d = -np.sort(-mags, axis=1)
    cs = np.cumsum(d, axis=1)
    k = np.arange(1, length + 1, dtype=np.float64)
    nxt = np.concatenate([d[:, 1:], np.zeros((g, 1))], axis=1)
    cand = (d > 0) & (nxt != d)
    score = np.where(cand, cs * cs / k, -np.inf)
    best = np.argmax(score, axis=1)
    has = cand.any(axis=1)
    idx = np.arange(g)
    alpha = np.where(has, cs[idx, best] / (best + 1), 0.0)
    cutoff = np.where(has, d[idx, best], np.inf)
    return alpha, cutoff


def solve_twn(mags, count):
    """TWN per row: delta = 0.7 * mean over `count` real weights; alpha = mean of |w| > delta."""
    total = last_sum(mags)
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(count > 0, (0.7 * total) / np.maximum(count, 1), 0.0)
    keep = mags > delta[:, None]
    kept = keep.sum(axis=1)
    s = last_sum(np.where(keep, mags, 0.0))
    alpha = np.where(kept > 0, s / np.maximum(kept, 1), 0.0)
    cutoff = np.where(kept > 0, np.where(keep, mags, np.inf).min(axis=1), np.inf)
    return alpha, cutoff


def near(a, b, tol):
    return np.abs(a - b) <= tol * np.maximum(a, b)


def preternarized(x):
    """Groups whose nonzero weights take one positive and one negative magnitude (tolerance)."""
    ok = np.ones(x.shape[0], dtype=bool)
    sides = []
    for sign in (1.0, -1.0):
        m = np.where(sign * x > 0, sign * x, 0.0)
        present = m > 0
        first = m[np.arange(x.shape[0]), np.argmax(present, axis=1)]
        same = (m == first[:, None]) | near(m, first[:, None], PRETERNARY_TOLERANCE)
        ok &= np.all(~present | same, axis=1)
        cnt = present.sum(axis=1)
        total = last_sum(m)
        sides.append((cnt, total, np.where(cnt > 0, total / np.maximum(cnt, 1), 0.0)))
    (cp, sp, ap), (cn, sn, an) = sides
    symmetric = (cp == 0) | (cn == 0) | (ap == an) | near(ap, an, PRETERNARY_TOLERANCE)
    count = cp + cn
    alpha = np.where(count > 0, (sp + sn) / np.maximum(count, 1), 0.0)
    return ok, symmetric, ap, an, alpha


def ternarize(groups, lengths, threshold, asym):
    """Dequantized ternary groups (float32) of float32 groups [count, L]."""
    x = groups.astype(np.float64)
    if asym:
        pos, neg = np.where(x > 0, x, 0.0), np.where(x < 0, -x, 0.0)
        if threshold == "exact":
            ap, cp = solve_exact(pos)
            an, cn = solve_exact(neg)
        else:
            ap, cp = solve_twn(pos, (x > 0).sum(axis=1))
            an, cn = solve_twn(neg, (x < 0).sum(axis=1))
        codes = np.where((x > 0) & (x >= cp[:, None]), 1, 0) - np.where((x < 0) & (-x >= cn[:, None]), 1, 0)
    else:
        mags = np.abs(x)
        if threshold == "exact":
            ap, c = solve_exact(mags)
        else:
            ap, c = solve_twn(mags, lengths)
        an = ap
        codes = np.where(x >= c[:, None], 1, 0) - np.where(-x >= c[:, None], 1, 0)
    ok, symmetric, lp, ln, la = preternarized(x)
    lossless = ok & (symmetric | asym)
    if lossless.any():
        codes = np.where(lossless[:, None], np.sign(x).astype(codes.dtype), codes)
        ap = np.where(lossless, lp if asym else la, ap)
        an = np.where(lossless, ln if asym else la, an)
    ap, an = f32(ap), f32(an)
    return np.where(codes > 0, ap[:, None], np.where(codes < 0, -an[:, None], np.float32(0))).astype(np.float32)


def int4_groups(groups):
    x = groups.astype(np.float64)
    mx = np.abs(x).max(axis=1)
    s = f32(mx / 7.0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(s[:, None] > 0, round_clamp(x / s[:, None], -7, 7), 0.0)
    return f32(q * s[:, None])


def int8_rows(w):
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    s = f32(np.abs(rows).max(axis=1) / 127.0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(s[:, None] > 0, round_clamp(rows / s[:, None], -127, 127), 0.0)
    return f32(q * s[:, None]).reshape(w.shape)


def quantize_weights(w, mode, n, threshold):
    if not np.all(np.isfinite(w)):
        raise SystemExit("non-finite weight")
    if mode == "int8":
        return int8_rows(w)
    groups, lengths, p = to_groups(w, n)
    if mode == "int4":
        dq = int4_groups(groups)
    else:
        dq = ternarize(groups, lengths, threshold, mode == "ternary-asym")
    return from_groups(dq, w.shape, n, p)


def relative_error(w, dq):
    w64, d = w.astype(np.float64), w.astype(np.float64) - dq.astype(np.float64)
    norm = float(np.sum(w64 * w64))
    return math.sqrt(float(np.sum(d * d)) / norm) if norm > 0 else 0.0


# --------------------------------------------------------------------------- activations

def act_params(lo, hi, bits):
    """Scale and zero point of a calibrated range: fp32 arithmetic, round half even."""
    qmax = (1 << bits) - 1
    lo, hi = min(0.0, lo), max(0.0, hi)
    if not hi > lo or not math.isfinite(hi - lo):
        return 1.0, 0, qmax
    scale = np.float32(np.float32(np.float32(hi) - np.float32(lo)) / np.float32(qmax))
    if not scale > 0 or not np.isfinite(scale):
        return 1.0, 0, qmax
    zp = int(min(qmax, max(0, np.round(np.float32(-np.float32(lo) / scale)))))
    return float(scale), zp, qmax


def fake_quant(x, params):
    scale, zp, qmax = params
    v = torch.clamp(x / scale, float(-zp), float(qmax - zp))
    return torch.round(v) * scale


# --------------------------------------------------------------------------- execution

def conv_padding(x, n, nd):
    pads = list(n.attrs.get("pads", [0] * (2 * nd)))
    if n.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise SystemExit("auto_pad is not simulated (node %s)" % n.name)
    begin, end = pads[:nd], pads[nd:]
    if begin == end:
        return x, tuple(begin)
    torch_pads = []
    for i in reversed(range(nd)):
        torch_pads += [begin[i], end[i]]
    return F.pad(x, torch_pads), (0,) * nd


class Model:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        # The hash of the very bytes simulated (the file may be replaced while this runs).
        self.sha256 = hashlib.sha256(data).hexdigest()
        nodes, inits, self.input, self.outputs = load_graph(data)
        self.nodes = fold_batch_norm(nodes, inits)
        self.inits = inits
        self.layers = find_layers(self.nodes, inits)
        self.by_name = {l.node.name: l for l in self.layers}
        self.edge = edge_layers(self.nodes, self.layers, self.input)
        self.t = {name: torch.from_numpy(np.array(v, copy=True)) for name, v in inits.items() if v.dtype == np.float32}

    def run(self, x, quant=None, capture=None):
        """Forward pass. quant: {layer name: (weights [Co, Cin, k...], act params)}; capture:
        {layer input name: [min, max]} updated with the fp32 values seen."""
        env = dict(self.t)
        env[self.input] = x
        for n in self.nodes:
            ins = [env[i] if i else None for i in n.inputs]
            layer = self.by_name.get(n.name)
            if layer is not None:
                a = ins[0]
                if capture is not None:
                    r = capture.setdefault(n.inputs[0], [math.inf, -math.inf])
                    finite = a[~torch.isnan(a)]
                    if finite.numel():
                        r[0], r[1] = min(r[0], float(finite.min())), max(r[1], float(finite.max()))
                w = torch.from_numpy(layer.weights)
                if quant is not None and n.name in quant:
                    wq, params = quant[n.name]
                    w = torch.from_numpy(wq)
                    a = fake_quant(a, params)
                if layer.kind == "conv":
                    nd = w.dim() - 2
                    a, pad = conv_padding(a, n, nd)
                    conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
                    b = torch.from_numpy(layer.bias) if layer.bias is not None else None
                    y = conv(a, w, b, stride=tuple(n.attrs.get("strides", [1] * nd)), padding=pad,
                             dilation=tuple(n.attrs.get("dilations", [1] * nd)), groups=n.attrs.get("group", 1))
                else:
                    y = torch.matmul(a, w.t())
                    if layer.bias is not None:
                        y = y + torch.from_numpy(layer.bias)
                env[n.outputs[0]] = y
                continue
            env[n.outputs[0]] = self.op(n, ins)
        return env[self.outputs[0]]

    def op(self, n, ins):
        o = n.op
        if o == "Relu":
            return torch.relu(ins[0])
        if o == "Add":
            return ins[0] + ins[1]
        if o == "Sub":
            return ins[0] - ins[1]
        if o == "Mul":
            return ins[0] * ins[1]
        if o == "Div":
            return ins[0] / ins[1]
        if o in ("Identity", "Dropout"):
            return ins[0]
        if o == "MaxPool":
            nd = ins[0].dim() - 2
            if nd != 2:
                raise SystemExit("MaxPool: 2-D only")
            x, pad = ins[0], list(n.attrs.get("pads", [0] * 4))
            if pad[:2] != pad[2:]:
                x = F.pad(x, [pad[1], pad[3], pad[0], pad[2]], value=-math.inf)
                pad = [0, 0, 0, 0]
            return F.max_pool2d(x, tuple(n.attrs["kernel_shape"]), tuple(n.attrs.get("strides", [1, 1])), tuple(pad[:2]),
                                tuple(n.attrs.get("dilations", [1, 1])), bool(n.attrs.get("ceil_mode", 0)))
        if o == "GlobalAveragePool":
            return ins[0].mean(dim=tuple(range(2, ins[0].dim())), keepdim=True)
        if o == "Flatten":
            axis = n.attrs.get("axis", 1)
            return ins[0].reshape(int(np.prod(ins[0].shape[:axis], dtype=np.int64)), -1)
        if o == "Gemm":  # a Gemm without constant weights
            a, b = ins[0], ins[1]
            if n.attrs.get("transA", 0):
                a = a.t()
            if n.attrs.get("transB", 0):
                b = b.t()
            y = n.attrs.get("alpha", 1.0) * (a @ b)
            return y + n.attrs.get("beta", 1.0) * ins[2] if len(ins) > 2 and ins[2] is not None else y
        raise SystemExit("op %s (node %s) is not simulated" % (o, n.name))


# --------------------------------------------------------------------------- main

def pixels(u8):
    return torch.from_numpy(u8.astype(np.float32) / np.float32(255.0))


def evaluate(model, images, labels, quant):
    correct = 0
    with torch.no_grad():
        for b in range(0, len(labels), BATCH):
            logits = model.run(pixels(images[b:b + BATCH]), quant)
            correct += int((logits.argmax(dim=1).numpy() == labels[b:b + BATCH]).sum())
    return correct


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="simulate only these modes (by name)")
    ap.add_argument("--no-write", action="store_true", help="print, do not write data/fgq-simulation.json")
    ap.add_argument("--count", type=int, default=None, help="test images (default: all)")
    ap.add_argument("--dump-weights", help="write every layer's dequantized weights of the first mode to this .npz")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    model = Model(MODEL)
    test_x = np.load(os.path.join(DATA, "fashion-mnist-test-images.npy"))
    test_y = np.load(os.path.join(DATA, "fashion-mnist-test-labels.npy")).astype(np.int64)
    if args.count:
        test_x, test_y = test_x[:args.count], test_y[:args.count]
    calib = np.load(os.path.join(DATA, "fashion-mnist-calib-images.npy"))[:CALIB_COUNT]
    ranges = {}
    with torch.no_grad():
        model.run(pixels(calib), None, ranges)
    names = [l.node.name for l in model.layers]
    print("layers: %s; edge: %s" % (len(names), ", ".join(sorted(model.edge))), file=sys.stderr)

    results = []
    selected = [m for m in modes() if not args.only or m["name"] in args.only]
    for m in selected:
        start = time.time()
        quant, layer_info = None, []
        if m["weights"] != "fp32":
            quant = {}
            for l in model.layers:
                name = l.node.name
                mode = "int8" if name in model.edge else m["weights"]
                wq = quantize_weights(l.weights, mode, m["groupSize"], m["threshold"])
                lo, hi = ranges[l.node.inputs[0]]
                params = act_params(0.0 if lo >= 0 else lo, hi, m["activationBits"])
                quant[name] = (wq, params)
                layer_info.append(dict(name=name, weights=mode, relativeError=relative_error(l.weights, wq),
                                       activationScale=params[0], activationZeroPoint=params[1]))
            if args.dump_weights and m is selected[0]:
                np.savez(args.dump_weights, **{name: q[0] for name, q in quant.items()})
        correct = evaluate(model, test_x, test_y, quant)
        r = dict(m, top1=correct / len(test_y), correct=correct, layers=layer_info)
        results.append(r)
        print("%-24s top-1 %.4f  (%.1f s)" % (m["name"], r["top1"], time.time() - start), file=sys.stderr)

    doc = {
        "comment": "Written by tools/simulate_fgq.py (PyTorch simulation of ternion's quantizer); checked by test/fgq-fidelity.test.ts",
        "model": os.path.relpath(MODEL, REPO),
        "modelSha256": model.sha256,
        "torch": torch.__version__,
        "calibration": {"file": "data/fashion-mnist-calib-images.npy", "count": CALIB_COUNT, "method": "max", "scale": "pixels / 255"},
        "testImages": int(len(test_y)),
        "modes": results,
    }
    text = json.dumps(doc, indent=1) + "\n"
    if args.no_write or args.only or args.count:
        if not args.no_write:
            print("(subset: not written)", file=sys.stderr)
        return
    with open(OUT, "w") as f:
        f.write(text)
    print("wrote %s" % os.path.relpath(OUT, REPO), file=sys.stderr)


if __name__ == "__main__":
    main()
