#!/usr/bin/python3
"""Fine-tune the embedded Fashion-MNIST model with trained ternary quantization (TTQ).

Starts from the fp32 model (the initializers of models/fashion-mnist-resnet.onnx, or a
state_dict checkpoint of tools/train_fashion_mnist.py) and fine-tunes it so that every inner
Conv holds exactly ternary weights per FGQ group, as ternion's quantize() groups them
(shared/fgq.md sections 2-3, lib/quantize/weights/layout.ts):

  group      N consecutive input channels at one (co, kh, kw); Cin padded to a multiple of N
             (a shorter last group when N does not divide Cin); --group filter: a whole row.
  forward    delta = t * max|w| over the group (TTQ's rule, t = --threshold, per group);
             w_q = +Wp above delta, -Wn below -delta, 0 between; Wp, Wn trained per group.
  backward   Wp / Wn get the summed gradient of the weights that use them; the latent fp32
             weights get a scaled straight-through gradient (x Wp, x 1, x Wn for the positive,
             zero and negative parts), as in Zhu et al. 2017.
  edges      the first conv and the last FC are fake-quantized int8 per output channel
             (symmetric, [-127, 127], ternion's rounding) with a straight-through gradient.
  acts       during the last --act-epochs epochs, the input of every quantized layer is
             fake-quantized to uint8 with ternion's 'max' calibration on the same 256
             calibration images its tests use (BatchNorm statistics frozen in that phase).

BatchNorm stays in the graph: ternion folds it into the conv before it looks for ternary
groups, and folding multiplies each output channel by one constant, so a group that holds
{-Wn, 0, +Wp} still holds exactly two magnitudes after the fold (checked at export).

Writes an ONNX model with the structure, names and opset of the embedded one (its initializers
replaced: inner convs exactly ternary in float32, edge layers the latent fp32 weights, which
ternion quantizes to int8 itself) and a JSON sidecar. The sidecar's accuracies are measured
on the EXPORTED file: its graph is re-read, BatchNorm folded as lib/ir/passes/fold-batch-norm.ts
does, and run in PyTorch (float32) both as is (fp32 activations) and in the configuration
ternion's quantize(path, { weights: 'ternary', groupSize: N, calibration }) runs: int8 edge
weights, ternary inner weights, uint8 activations calibrated by 'max' (lib/quantize/calibrate.ts).

Run with the Debian interpreter (python3-torch 1.13, python3-onnx):

  /usr/bin/python3 tools/train_ttq.py --group 64 --epochs 4 --threads 1
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_fashion_mnist as base  # noqa: E402  (model definition, data loading, augmentation)

REPO = base.REPO
BASE_ONNX = os.path.join(REPO, "models", "fashion-mnist-resnet.onnx")
DATA_DIR = os.path.join(REPO, "data")
CALIB_COUNT = 256          # the calibration slice test/quantize-model.test.ts and ternion's tests use
EDGE_LAYERS = ("stem.0", "fc")
SEED = 20240602


# --------------------------------------------------------------------------- groups

def to_groups(torch, w, n):
    """[Co, Ci, *k] -> [Co, groups, n] in ternion's GEMM row order (ci innermost, then the kernel
    position), Cin zero-padded to a multiple of n. n = 'filter': one group per row."""
    co, ci = w.shape[0], w.shape[1]
    if n == "filter":
        return w.reshape(co, 1, -1)
    s = w[0, 0].numel()
    x = w.reshape(co, ci, s).transpose(1, 2)  # [Co, S, Ci]
    cp = -(-ci // n) * n
    if cp != ci:
        x = torch.nn.functional.pad(x, (0, cp - ci))
    return x.reshape(co, s * cp // n, n)


def from_groups(g, shape, n):
    co, ci = shape[0], shape[1]
    if n == "filter":
        return g.reshape(shape)
    s = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    x = g.reshape(co, s, -1)[:, :, :ci]
    return x.transpose(1, 2).reshape(shape)


# --------------------------------------------------------------------------- quantizers

def build_quantizers(torch, nn):
    class Ternarize(torch.autograd.Function):
        """Grouped latent weights [R, G, n] -> Wp * [w > delta] - Wn * [w < -delta]."""

        @staticmethod
        def forward(ctx, latent, wp, wn, t):
            delta = t * latent.abs().amax(dim=2, keepdim=True)
            pos = (latent > delta).to(latent.dtype)
            neg = (latent < -delta).to(latent.dtype)
            ctx.save_for_backward(pos, neg, wp, wn)
            return wp * pos - wn * neg

        @staticmethod
        def backward(ctx, g):
            pos, neg, wp, wn = ctx.saved_tensors
            g_latent = g * (wp * pos + (1 - pos - neg) + wn * neg)
            return g_latent, (g * pos).sum(2, keepdim=True), -(g * neg).sum(2, keepdim=True), None

    class TTQWeight(nn.Module):
        """Parametrization: latent weights (normalized by the layer's initial max|w|) -> exactly
        ternary weights per group with trained positive / negative scales."""

        def __init__(self, weight, n, t):
            super().__init__()
            self.shape = tuple(weight.shape)
            self.n = n
            self.t = t
            self.unit = float(weight.detach().abs().max())
            lat = to_groups(torch, weight.detach() / self.unit, n)
            delta = t * lat.abs().amax(2, keepdim=True)
            pos, neg = lat > delta, lat < -delta
            wp = (lat * pos).sum(2, keepdim=True) / pos.sum(2, keepdim=True).clamp(min=1)
            wn = -(lat * neg).sum(2, keepdim=True) / neg.sum(2, keepdim=True).clamp(min=1)
            # L2-optimal scale of each side for its support; an empty side gets the other's.
            wp = torch.where(pos.any(2, keepdim=True), wp, wn)
            wn = torch.where(neg.any(2, keepdim=True), wn, wp)
            self.wp = nn.Parameter(wp.clamp(min=1e-4))
            self.wn = nn.Parameter(wn.clamp(min=1e-4))

        def forward(self, latent):
            q = Ternarize.apply(to_groups(torch, latent, self.n), self.wp, self.wn, self.t)
            return from_groups(q, self.shape, self.n) * self.unit

        def right_inverse(self, weight):
            return weight / self.unit

        def clamp_scales(self):
            with torch.no_grad():
                self.wp.clamp_(min=1e-4)
                self.wn.clamp_(min=1e-4)

        def export(self, latent):
            """The float32 ternary weights: each group holds exactly float32(unit * Wp),
            -float32(unit * Wn) and 0."""
            with torch.no_grad():
                g = to_groups(torch, latent, self.n)  # the codes of the float32 forward pass
                delta = self.t * g.abs().amax(2, keepdim=True)
                ap = (self.wp.double() * self.unit).float().expand_as(g)
                an = (self.wn.double() * self.unit).float().expand_as(g)
                q = torch.where(g > delta, ap, torch.where(g < -delta, -an, torch.zeros_like(g)))
                return from_groups(q, self.shape, self.n).contiguous()

    class Int8PerChannel(nn.Module):
        """Parametrization: symmetric int8 per output channel, as lib/quantize/weights/int8.ts
        (scale = max|w| / 127, ties away from zero), straight-through gradient."""

        enabled = True

        def forward(self, w):
            if not self.enabled:
                return w
            flat = w.reshape(w.shape[0], -1)
            s = (flat.detach().abs().amax(1, keepdim=True) / 127.0).clamp(min=1e-30)
            v = flat / s
            q = torch.clamp(torch.sign(v) * torch.floor(v.abs() + 0.5), -127, 127) * s
            return (flat + (q - flat).detach()).reshape(w.shape)

    class ActQuant:
        """Forward pre-hook: observes a layer's input range, or fake-quantizes it to uint8
        (q = clamp(round_half_even(x / s), -zp, 255 - zp), dequantized as q * s)."""

        def __init__(self):
            self.enabled = False
            self.observe = False
            self.lo, self.hi = math.inf, -math.inf
            self.scale, self.zero_point = 1.0, 0

        def __call__(self, module, inputs):
            x = inputs[0]
            if self.observe:
                self.lo = min(self.lo, float(x.min()))
                self.hi = max(self.hi, float(x.max()))
            if not self.enabled:
                return None
            v = torch.clamp(x / self.scale, float(-self.zero_point), float(255 - self.zero_point))
            xq = torch.round(v) * self.scale
            if torch.is_grad_enabled():
                inside = (v > -self.zero_point) & (v < 255 - self.zero_point)
                xq = torch.where(inside, x, x.detach()) + (xq - x).detach()
            return (xq,) + tuple(inputs[1:])

        def calibrate(self):
            self.scale, self.zero_point = activation_params(self.lo, self.hi)

    return TTQWeight, Int8PerChannel, ActQuant


def activation_params(lo, hi, qmax=255):
    """paramsOfRange() of lib/quantize/calibrate.ts in float32: uint8 scale and zero point."""
    f = np.float32
    lo, hi = min(0.0, lo), max(0.0, hi)
    if not hi > lo:
        return 1.0, 0
    scale = f(f(f(hi) - f(lo)) / f(qmax))
    if not (scale > 0 and np.isfinite(scale)):
        return 1.0, 0
    zp = int(min(qmax, max(0, round(float(f(-f(lo) / scale))))))  # round(): half to even
    return float(scale), zp


# --------------------------------------------------------------------------- the exported graph in PyTorch

def fold_batch_norm(onnx_model):
    """Nodes and float32 weights of the graph with each BatchNormalization folded into the Conv
    before it, computed as lib/ir/passes/fold-batch-norm.ts does (float64 multiplier, weights and
    bias rounded to float32)."""
    from onnx import helper, numpy_helper
    w = {t.name: numpy_helper.to_array(t).copy() for t in onnx_model.graph.initializer}
    nodes = [(n.op_type, list(n.input), list(n.output), {a.name: helper.get_attribute_value(a) for a in n.attribute})
             for n in onnx_model.graph.node]
    producer = {o: i for i, nd in enumerate(nodes) for o in nd[2]}
    consumers = {}
    for nd in nodes:
        for i in nd[1]:
            consumers[i] = consumers.get(i, 0) + 1
    out, dropped = list(nodes), set()
    for bi, (op, ins, outs, attrs) in enumerate(nodes):
        if op != "BatchNormalization":
            continue
        pi = producer.get(ins[0])
        if pi is None or nodes[pi][0] != "Conv" or consumers[ins[0]] != 1:
            continue
        scale, bias, mean, var = (w[n].astype(np.float64) for n in ins[1:5])
        mult = scale / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        offset = bias - mean * mult
        cop, cins, couts, cattrs = out[pi]
        wt = w[cins[1]]
        nw = (wt.astype(np.float64) * mult.reshape(-1, *([1] * (wt.ndim - 1)))).astype(np.float32)
        old = w[cins[2]].astype(np.float64) if len(cins) > 2 and cins[2] else 0.0
        nb = (old * mult + offset).astype(np.float32)
        wname, bname = cins[1] + "_bn", cins[1] + "_bn_bias"
        w[wname], w[bname] = nw, nb
        out[pi] = (cop, [cins[0], wname, bname], [outs[0]], cattrs)
        dropped.add(bi)
    return [nd for i, nd in enumerate(out) if i not in dropped], w


def quantized_layers(nodes):
    """Conv / Gemm nodes with constant weights, and the edge ones ternion keeps int8: the first
    Conv fed by the input through weightless ops, and the last Gemm / MatMul."""
    layers = [i for i, nd in enumerate(nodes) if nd[0] in ("Conv", "Gemm", "MatMul")]
    first = next(i for i in layers if nodes[i][0] == "Conv")
    gemms = [i for i in layers if nodes[i][0] != "Conv"]
    return layers, {first, gemms[-1]}


def int8_rows(w2d):
    """lib/quantize/weights/int8.ts: per-row scale float32(max|w| / 127), codes round half away."""
    w64 = w2d.astype(np.float64)
    s = (np.abs(w2d).max(axis=1).astype(np.float64) / 127.0).astype(np.float32).astype(np.float64)
    safe = np.where(s == 0, 1.0, s)
    v = w64 / safe[:, None]
    q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -127, 127)
    q[s == 0] = 0
    return (q * s[:, None]).astype(np.float32)


def check_ternary_groups(w, n):
    """Every group (ternion's grouping) holds at most one positive and one negative float32 value."""
    import torch
    g = to_groups(torch, torch.from_numpy(w), n).numpy()
    r = g.reshape(-1, g.shape[-1])
    pos = np.where(r > 0, r, np.nan)
    neg = np.where(r < 0, r, np.nan)
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        ok_p = np.all((r <= 0) | (r == np.nanmax(pos, axis=1, keepdims=True)))
        ok_n = np.all((r >= 0) | (r == np.nanmin(neg, axis=1, keepdims=True)))
    return bool(ok_p and ok_n), float((w == 0).mean())


class GraphRunner:
    """The exported graph (BN folded) in PyTorch float32; optionally in ternion's quantized
    configuration: int8 edge weights and uint8 activations calibrated by 'max'."""

    def __init__(self, torch, onnx_model):
        self.torch = torch
        self.nodes, w = fold_batch_norm(onnx_model)
        self.w = {k: torch.from_numpy(v) for k, v in w.items()}
        self.layers, self.edges = quantized_layers(self.nodes)
        self.wq = dict(self.w)
        for i in self.edges:
            name = self.nodes[i][1][1]
            a = w[name]
            self.wq[name] = torch.from_numpy(int8_rows(a.reshape(a.shape[0], -1)).reshape(a.shape))
        self.act = {}

    def inner_weights(self):
        """(name, folded float32 weights) of the layers ternion makes ternary."""
        return [(self.nodes[i][1][1], self.w[self.nodes[i][1][1]].numpy()) for i in self.layers if i not in self.edges]

    def run(self, x, quantized=False, observe=None):
        torch, F = self.torch, self.torch.nn.functional
        env = {"image": x}
        for i, (op, ins, outs, a) in enumerate(self.nodes):
            v = [env[n] if n in env else self.w.get(n) for n in ins]
            if i in self.layers:
                if observe is not None:
                    lo, hi = observe.get(ins[0], (math.inf, -math.inf))
                    observe[ins[0]] = (min(lo, float(v[0].min())), max(hi, float(v[0].max())))
                if quantized:
                    s, zp = self.act[ins[0]]
                    v[0] = torch.round(torch.clamp(v[0] / s, float(-zp), float(255 - zp))) * s
                    v[1] = self.wq[ins[1]]
            if op == "Conv":
                pads = a.get("pads", [0, 0, 0, 0])
                assert pads[0] == pads[2] and pads[1] == pads[3] and a.get("group", 1) == 1
                y = F.conv2d(v[0], v[1], v[2] if len(v) > 2 else None, stride=tuple(a.get("strides", [1, 1])),
                             padding=(pads[0], pads[1]), dilation=tuple(a.get("dilations", [1, 1])))
            elif op == "Gemm":
                assert a.get("transB", 0) == 1 and not a.get("transA", 0)
                y = a.get("alpha", 1.0) * v[0] @ v[1].t()
                if len(v) > 2:
                    y = y + a.get("beta", 1.0) * v[2]
            elif op == "Relu":
                y = torch.relu(v[0])
            elif op == "Add":
                y = v[0] + v[1]
            elif op == "Sub":
                y = v[0] - v[1]
            elif op == "Div":
                y = v[0] / v[1]
            elif op == "MaxPool":
                assert not any(a.get("pads", [0])) and not a.get("ceil_mode", 0)
                y = F.max_pool2d(v[0], tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])))
            elif op == "GlobalAveragePool":
                y = v[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Flatten":
                y = torch.flatten(v[0], a.get("axis", 1))
            else:
                raise NotImplementedError(op)
            env[outs[0]] = y
        return env["logits"]

    def calibrate(self, calib_x):
        seen = {}
        with self.torch.no_grad():
            self.run(calib_x, observe=seen)
        self.act = {k: activation_params(lo, hi) for k, (lo, hi) in seen.items()}

    def top1(self, x_u8, y, quantized, batch=1000):
        correct = 0
        with self.torch.no_grad():
            for i in range(0, x_u8.shape[0], batch):
                xb = self.torch.from_numpy(x_u8[i:i + batch].astype(np.float32) / 255.0)
                correct += int((self.run(xb, quantized).argmax(1).numpy() == y[i:i + batch]).sum())
        return correct / x_u8.shape[0]


# --------------------------------------------------------------------------- main

def load_onnx_state(torch, model, path):
    import onnx
    from onnx import numpy_helper
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    sd = model.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        sd[k] = torch.from_numpy(inits[k].copy()).reshape(sd[k].shape)
    model.load_state_dict(sd)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", default="64", help="N (input channels per group) or 'filter' (default 64)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--act-epochs", type=int, default=1,
                    help="last epochs with uint8 activation fake-quantization and frozen BN statistics")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed to 0")
    ap.add_argument("--threshold", type=float, default=0.05, help="TTQ t: delta = t * max|w| per group")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--bn-batches", type=int, default=50,
                    help="training batches to re-estimate BatchNorm statistics after ternarizing (0: keep the fp32 ones)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--base", default=BASE_ONNX, help="fp32 ONNX model whose initializers are the start")
    ap.add_argument("--from-checkpoint", metavar="PATH",
                    help="start from this train_fashion_mnist.py state_dict checkpoint instead")
    ap.add_argument("--data-dir", default=base.DEFAULT_DATA_DIR)
    ap.add_argument("--limit", type=int, default=0, help="training steps per epoch (0: all; for quick trials)")
    ap.add_argument("--eval-limit", type=int, default=10000, help="test images for the per-epoch report")
    ap.add_argument("--out", help="output .onnx (default models/fashion-mnist-ttq-n<N>.onnx); .json beside it")
    args = ap.parse_args()
    n = "filter" if args.group == "filter" else int(args.group)
    out = args.out or os.path.join(REPO, "models", "fashion-mnist-ttq-n%s.onnx" % n)
    meta_path = os.path.splitext(out)[0] + ".json"

    import onnx
    import torch
    import torch.nn as nn
    import torch.nn.utils.parametrize as parametrize

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()

    tr_x, tr_y, _, _ = base.load_fashion_mnist(args.data_dir)
    te_x = np.load(os.path.join(DATA_DIR, "fashion-mnist-test-images.npy"))
    te_y = np.load(os.path.join(DATA_DIR, "fashion-mnist-test-labels.npy"))
    calib_x = torch.from_numpy(np.load(os.path.join(DATA_DIR, "fashion-mnist-calib-images.npy"))[:CALIB_COUNT]
                               .astype(np.float32) / 255.0)

    model = base.build_model(torch, nn)
    if args.from_checkpoint:
        model.load_state_dict(torch.load(args.from_checkpoint)["state_dict"])
        start = {"checkpoint": args.from_checkpoint}
    else:
        load_onnx_state(torch, model, args.base)
        start = {"onnx": os.path.relpath(args.base, REPO), "sha256": sha256(args.base)}
    fp32_top1 = base.evaluate(torch, model, te_x, te_y)
    print("start: %s, fp32 top-1 %.4f" % (start, fp32_top1), flush=True)

    TTQWeight, Int8PerChannel, ActQuant = build_quantizers(torch, nn)
    ternary, edges, hooks = {}, {}, {}
    for name, m in model.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        if name in EDGE_LAYERS:
            edges[name] = Int8PerChannel()
            parametrize.register_parametrization(m, "weight", edges[name])
        else:
            ternary[name] = TTQWeight(m.weight, n, args.threshold)
            parametrize.register_parametrization(m, "weight", ternary[name])
        hooks[name] = ActQuant()
        m.register_forward_pre_hook(hooks[name])
    modules = dict(model.named_modules())
    assert set(edges) == set(EDGE_LAYERS) and len(ternary) == 8, (sorted(edges), sorted(ternary))
    x_train = torch.from_numpy(tr_x.astype(np.float32) / 255.0)
    y_train = torch.from_numpy(tr_y.astype(np.int64))
    count = x_train.shape[0]
    gen = torch.Generator().manual_seed(args.seed)
    init_top1 = base.evaluate(torch, model, te_x[:args.eval_limit], te_y[:args.eval_limit])
    # Ternarizing shifts every layer's output statistics: re-estimate BatchNorm's running mean
    # and variance under the ternary weights before training (a cumulative average over
    # --bn-batches training batches, no gradient).
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if args.bn_batches:
        model.train()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        with torch.no_grad():
            for idx in torch.randperm(count, generator=gen)[:args.bn_batches * args.batch_size].split(args.batch_size):
                model(x_train[idx])
        for m in bns:
            m.momentum = 0.1
    bn_top1 = base.evaluate(torch, model, te_x[:args.eval_limit], te_y[:args.eval_limit])
    print("ternarized at N=%s (t=%g), before fine-tuning: top-1 %.4f, %.4f with BN re-estimated (fp32 activations)"
          % (n, args.threshold, init_top1, bn_top1), flush=True)

    def calibrate():
        """ternion's calibration: the model as exported (fp32 edges, fp32 activations), eval mode."""
        model.eval()
        for e in edges.values():
            e.enabled = False
        for h in hooks.values():
            h.enabled, h.observe, h.lo, h.hi = False, True, math.inf, -math.inf
        with torch.no_grad():
            model(calib_x)
        for h in hooks.values():
            h.observe = False
            h.calibrate()
            h.enabled = True
        for e in edges.values():
            e.enabled = True

    steps = (count + args.batch_size - 1) // args.batch_size
    if args.limit:
        steps = min(steps, args.limit)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    total = steps * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    history = []
    t_train = time.time()
    for epoch in range(args.epochs):
        act_phase = epoch >= args.epochs - args.act_epochs
        if act_phase:
            calibrate()
        model.train()
        if act_phase:
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        perm = torch.randperm(count, generator=gen)
        tot_loss, tot_correct, seen = 0.0, 0, 0
        t0 = time.time()
        for s in range(steps):
            idx = perm[s * args.batch_size:(s + 1) * args.batch_size]
            xb = base.augment(torch, x_train[idx], gen, 0)
            yb = y_train[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            for q in ternary.values():
                q.clamp_scales()
            tot_loss += float(loss) * yb.shape[0]
            tot_correct += int((logits.argmax(1) == yb).sum())
            seen += yb.shape[0]
        acc = base.evaluate(torch, model, te_x[:args.eval_limit], te_y[:args.eval_limit])
        history.append({"epoch": epoch + 1, "loss": round(tot_loss / seen, 4), "train_top1": round(tot_correct / seen, 4),
                        "test_top1": round(acc, 4), "activations": "uint8" if act_phase else "fp32",
                        "seconds": round(time.time() - t0, 1)})
        print("epoch %d/%d  loss %.4f  train-acc %.4f  test-acc %.4f (%s activations, int8 edges)  (%.0fs)"
              % (epoch + 1, args.epochs, tot_loss / seen, tot_correct / seen, acc,
                 "uint8" if act_phase else "fp32", time.time() - t0), flush=True)
    train_seconds = time.time() - t_train

    # ---- export: the embedded model's graph with its initializers replaced
    model.eval()
    values = {}
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if ".parametrizations." not in k and not k.endswith("num_batches_tracked"):
                values[k] = v.numpy()
        for name, q in ternary.items():
            m = modules[name]
            values[name + ".weight"] = q.export(m.parametrizations.weight.original).numpy()
        for name in edges:
            values[name + ".weight"] = modules[name].parametrizations.weight.original.numpy()
    proto = onnx.load(args.base)
    for t in proto.graph.initializer:
        if t.name in values:
            arr = np.ascontiguousarray(values[t.name], dtype=np.float32).reshape(tuple(t.dims))
            t.CopyFrom(onnx.numpy_helper.from_array(arr, t.name))
    proto.doc_string = ("ternion Fashion-MNIST model fine-tuned with trained ternary quantization (TTQ), "
                        "inner convs ternary per group of N=%s input channels; input: float32 [batch,1,28,28] pixels/255" % n)
    onnx.checker.check_model(proto, full_check=True)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    onnx.save(proto, out)

    # ---- verify the exported file
    runner = GraphRunner(torch, onnx.load(out))
    layers = []
    for name, w in runner.inner_weights():
        ok, zeros = check_ternary_groups(w, n)
        layers.append({"weight": name, "shape": list(w.shape), "ternary_after_bn_fold": ok, "zero_fraction": round(zeros, 4)})
        assert ok, "%s is not ternary per group after the BN fold" % name
    top1_fp32_acts = runner.top1(te_x, te_y, quantized=False)
    runner.calibrate(calib_x)
    top1_ternion = runner.top1(te_x, te_y, quantized=True)
    # The exported weights loaded back into the PyTorch module (BN unfolded, fp32 activations).
    check = base.build_model(torch, nn)
    load_onnx_state(torch, check, out)
    top1_module = base.evaluate(torch, check, te_x, te_y)
    print("exported %s: top-1 %.4f fp32 activations (graph), %.4f (module), %.4f int8 edges + uint8 activations"
          % (out, top1_fp32_acts, top1_module, top1_ternion), flush=True)

    meta = {
        "name": os.path.splitext(os.path.basename(out))[0],
        "file": os.path.basename(out),
        "method": "TTQ fine-tuning (Zhu et al. 2017) with per-group trained positive and negative scales",
        "group_size": n,
        "grouping": "channels",
        "threshold": {"rule": "delta = t * max|w| per group", "t": args.threshold},
        "top1_test_pytorch": round(top1_ternion, 4),
        "top1_test_pytorch_config": ("exported graph, BN folded, int8 edge weights per output channel, ternary inner "
                                     "weights, uint8 activations calibrated by 'max' on the first 256 calibration "
                                     "images: what quantize(path, { weights: 'ternary', groupSize: N, calibration }) runs"),
        "top1_test_pytorch_fp32_activations": round(top1_fp32_acts, 4),
        "top1_test_pytorch_module_fp32": round(top1_module, 4),
        "top1_before_fine_tuning_fp32_activations": round(init_top1, 4) if args.eval_limit == 10000 else None,
        "top1_before_fine_tuning_bn_reestimated": round(bn_top1, 4) if args.eval_limit == 10000 else None,
        "bn_reestimation_batches": args.bn_batches,
        "base_top1_fp32": round(fp32_top1, 4),
        "base": start,
        "test_images": int(te_x.shape[0]),
        "calibration_images": CALIB_COUNT,
        "activation_params": {k: {"scale": s, "zero_point": z} for k, (s, z) in runner.act.items()},
        "layers": layers,
        "edge_layers": "first conv and last FC: fp32 weights in the file, int8 per output channel in ternion",
        "epochs": args.epochs,
        "act_epochs": args.act_epochs,
        "steps_per_epoch": steps,
        "seed": args.seed,
        "training": {"optimizer": "Adam", "lr": args.lr, "schedule": "cosine to 0", "batch_size": args.batch_size,
                     "label_smoothing": 0.05, "augmentation": "horizontal flip", "threads": args.threads,
                     "seconds": round(train_seconds, 1), "history": history},
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": 13,
    }
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("wrote %s, %s (total %.0fs)" % (out, meta_path, time.time() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
