#!/usr/bin/python3
"""Train a small MobileNetV2-style Fashion-MNIST model (depthwise convs) for ternion.

The real-data model with depthwise convolutions (Conv with group == channels, one input
channel per group) that tests quantize() / the TernionQConv depthwise kernel on. Writes:

  models/fashion-mnist-mobilenet.onnx    fp32 ONNX graph (opset 13), BatchNorm folded into the convs
  models/fashion-mnist-mobilenet.json    metadata (accuracy, seed, input spec, architecture ...)

Same input contract as models/fashion-mnist-resnet.onnx: input "image", float32
[batch,1,28,28] = uint8 pixel / 255; the (x - mean) / std normalization is inside the graph
(first Sub + Div nodes), with the same mean/std. Data loading, augmentation and evaluation
are reused from tools/train_fashion_mnist.py (raw IDX files of the Debian package
dataset-fashion-mnist, /usr/share/datasets/fashion-mnist; nothing is downloaded). The
data/*.npy fixtures that script writes are only read here (checked against the IDX files),
never rewritten.

Run with the Debian interpreter (python3-torch 1.13, python3-onnx), on one core:

  /usr/bin/python3 tools/train_fashion_mnist_mobilenet.py

`--bench` times a few training steps and exits.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_fashion_mnist as base  # noqa: E402  (data loading, augmentation, evaluation, onnx helpers)

REPO = base.REPO
NAME = "fashion-mnist-mobilenet"
SEED = 20240611
MEAN, STD = base.MEAN, base.STD
COMMAND = "/usr/bin/python3 tools/train_fashion_mnist_mobilenet.py"

# Stem conv3x3 stride 2 (28x28 -> 14x14): with the blocks at 14x14 / 7x7 an epoch takes
# ~110 s on one core (channels-last training), so the default 4 epochs stay under 10 minutes.
STEM, STEM_STRIDE = 16, 2
# Inverted-residual blocks: (expansion t, output channels, stride). Residual add when stride 1
# and the channel count is unchanged (blocks.0, blocks.2 and blocks.4).
BLOCKS = ((2, 16, 1), (4, 24, 2), (4, 24, 1), (4, 40, 1), (4, 40, 1))
HEAD = 128


# --------------------------------------------------------------------------- model

def build_model(torch, nn):
    class Normalize(nn.Module):
        """(x - mean) / std on [0,1] pixels; exported as Sub + Div."""

        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([MEAN], dtype=torch.float32).view(1, 1, 1, 1))
            self.register_buffer("std", torch.tensor([STD], dtype=torch.float32).view(1, 1, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    def conv_bn(cin, cout, k, stride, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        return nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, t, stride):
            super().__init__()
            hidden = cin * t
            self.expand = conv_bn(cin, hidden, 1, 1)
            self.dw = conv_bn(hidden, hidden, 3, stride, groups=hidden)  # depthwise
            self.project = conv_bn(hidden, cout, 1, 1, act=False)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = self.project(self.dw(self.expand(x)))
            return x + y if self.residual else y

    class FashionMobileNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = Normalize()
            self.stem = conv_bn(1, STEM, 3, STEM_STRIDE)
            blocks, cin = [], STEM
            for t, cout, s in BLOCKS:
                blocks.append(InvertedResidual(cin, cout, t, s))
                cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Sequential(nn.Conv2d(cin, HEAD, 1, 1, 0, bias=False), nn.BatchNorm2d(HEAD),
                                      nn.ReLU6(inplace=True))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(HEAD, 10)

        def forward(self, x):
            x = self.blocks(self.stem(self.norm(x)))
            x = torch.flatten(self.pool(self.head(x)), 1)
            return self.fc(x)

    model = FashionMobileNet()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    # Zero-init the projection BN of residual blocks (they start as identity).
    for m in model.modules():
        if isinstance(m, InvertedResidual) and m.residual:
            nn.init.zeros_(m.project[1].weight)
    return model


def fold_batch_norm(torch, nn, model):
    """A copy of the eval-mode model with every Conv+BN pair fused into one Conv with bias."""
    import copy
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    fused = copy.deepcopy(model).eval()

    def visit(mod):
        for name, child in list(mod.named_children()):
            if isinstance(child, nn.Sequential):
                items = list(child.children())
                out, i = [], 0
                while i < len(items):
                    if (isinstance(items[i], nn.Conv2d) and i + 1 < len(items)
                            and isinstance(items[i + 1], nn.BatchNorm2d)):
                        out.append(fuse_conv_bn_eval(items[i], items[i + 1]))
                        i += 2
                    else:
                        visit(items[i])
                        out.append(items[i])
                        i += 1
                setattr(mod, name, nn.Sequential(*out))
            else:
                visit(child)

    visit(fused)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    return fused


def describe(model):
    lines = []
    for name, m in model.named_modules():
        t = type(m).__name__
        if t == "Conv2d":
            kind = " depthwise" if m.groups > 1 and m.groups == m.in_channels == m.out_channels else ""
            lines.append("%s: Conv2d(%d->%d, k=%d, s=%d, groups=%d)%s" % (
                name, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.groups, kind))
        elif t == "Linear":
            lines.append("%s: Linear(%d->%d)" % (name, m.in_features, m.out_features))
    return lines


def summary():
    hw = 28 // STEM_STRIDE
    parts = ["Sub/Div normalize", "conv3x3(1->%d, s%d)+BN+ReLU6 @%dx%d" % (STEM, STEM_STRIDE, hw, hw)]
    cin = STEM
    for t, cout, s in BLOCKS:
        hw = (hw + 1) // 2 if s == 2 else hw
        parts.append("IR(%d->%d->%d, t=%d, dw s%d%s) @%dx%d" % (
            cin, cin * t, cout, t, s, ", +residual" if s == 1 and cin == cout else "", hw, hw))
        cin = cout
    parts += ["conv1x1(%d->%d)+BN+ReLU6" % (cin, HEAD), "GlobalAveragePool", "FC(%d->10)" % HEAD]
    return " -> ".join(parts) + "; IR = 1x1 expand+BN+ReLU6, 3x3 depthwise+BN+ReLU6, 1x1 project+BN"


# --------------------------------------------------------------------------- onnx check

def numpy_onnx_run(model_proto, x):
    """Small float64 numpy interpreter for this graph's ops (grouped Conv, Clip, ...): an
    independent check of the exported file (onnx 1.12 has no onnx.reference)."""
    from onnx import helper, numpy_helper
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model_proto.graph.initializer}
    env[model_proto.graph.input[0].name] = x.astype(np.float64)

    def dense_conv(xp, w, sh, sw, oh, ow):
        kh, kw = w.shape[2], w.shape[3]
        y = np.zeros((xp.shape[0], w.shape[0], oh, ow))
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                y += np.tensordot(w[:, :, i, j], patch, axes=([1], [1])).transpose(1, 0, 2, 3)
        return y

    def conv(x, w, b, a):
        n, c, h, wd = x.shape
        m, cg, kh, kw = w.shape
        g = a.get("group", 1)
        assert c == cg * g and m % g == 0 and tuple(a.get("dilations", [1, 1])) == (1, 1)
        sh, sw = a.get("strides", [1, 1])
        pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        oh = (h + pt + pb - kh) // sh + 1
        ow = (wd + pl + pr - kw) // sw + 1
        mg = m // g
        y = np.concatenate([dense_conv(xp[:, k * cg:(k + 1) * cg], w[k * mg:(k + 1) * mg], sh, sw, oh, ow)
                            for k in range(g)], axis=1)
        return y if b is None else y + b[None, :, None, None]

    for nd in model_proto.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in nd.attribute}
        ins = [env[i] if i else None for i in nd.input]
        t = nd.op_type
        if t == "Conv":
            out = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif t == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            out = np.clip(ins[0], lo, hi)
        elif t == "Relu":
            out = np.maximum(ins[0], 0)
        elif t == "Add":
            out = ins[0] + ins[1]
        elif t == "Sub":
            out = ins[0] - ins[1]
        elif t == "Div":
            out = ins[0] / ins[1]
        elif t == "GlobalAveragePool":
            out = ins[0].mean(axis=(2, 3), keepdims=True)
        elif t == "Flatten":
            ax = a.get("axis", 1)
            out = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif t == "Gemm":
            aa, bb = ins[0], ins[1]
            if a.get("transA", 0):
                aa = aa.T
            if a.get("transB", 0):
                bb = bb.T
            out = a.get("alpha", 1.0) * aa @ bb
            if len(ins) > 2 and ins[2] is not None:
                out = out + a.get("beta", 1.0) * ins[2]
        elif t == "Constant":
            out = numpy_helper.to_array(a["value"]).astype(np.float64)
        elif t == "Identity":
            out = ins[0]
        else:
            raise NotImplementedError(t)
        env[nd.output[0]] = out
    return env[model_proto.graph.output[0].name]


def constants_to_initializers(model_proto):
    """Turn Constant nodes (the Clip bounds of ReLU6) into initializers."""
    from onnx import helper
    keep = []
    for nd in model_proto.graph.node:
        if nd.op_type == "Constant" and len(nd.attribute) == 1 and nd.attribute[0].name == "value":
            t = helper.get_attribute_value(nd.attribute[0])
            t.name = nd.output[0]
            model_proto.graph.initializer.append(t)
        else:
            keep.append(nd)
    del model_proto.graph.node[:]
    model_proto.graph.node.extend(keep)
    return model_proto


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=base.DEFAULT_DATA_DIR)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=4e-5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bench", action="store_true", help="time a few training steps and exit")
    ap.add_argument("--out-root", default=REPO, help="write models/ under this directory (default: the repo)")
    args = ap.parse_args()
    models_dir = os.path.join(args.out_root, "models")
    onnx_path = os.path.join(models_dir, NAME + ".onnx")
    meta_path = os.path.join(models_dir, NAME + ".json")

    t_start = time.time()
    tr_x, tr_y, te_x, te_y = base.load_fashion_mnist(args.data_dir)

    # The test fixtures the vitest suite evaluates on must be these very images.
    fixtures = {"test_images": "data/fashion-mnist-test-images.npy",
                "test_labels": "data/fashion-mnist-test-labels.npy",
                "calib_images": "data/fashion-mnist-calib-images.npy"}
    fx = {k: os.path.join(REPO, v) for k, v in fixtures.items()}
    if all(os.path.exists(p) for p in fx.values()):
        assert np.array_equal(np.load(fx["test_images"]), te_x), "data/ test images differ from the IDX test set"
        assert np.array_equal(np.load(fx["test_labels"]), te_y), "data/ test labels differ from the IDX test set"
        rng = np.random.RandomState(base.CALIB_SEED)
        idx = np.sort(rng.choice(tr_x.shape[0], base.CALIB_COUNT, replace=False))
        assert np.array_equal(np.load(fx["calib_images"]), tr_x[idx]), "data/ calibration images differ"
        print("data/ fixtures match the IDX files")
    else:
        print("note: data/ fixtures missing (tools/train_fashion_mnist.py --fixtures-only writes them)")

    import torch
    import torch.nn as nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)

    model = build_model(torch, nn)
    # Channels-last is ~2x faster for these depthwise/1x1 convs on CPU (mkldnn); same math.
    model = model.to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %d parameters" % n_params)
    for line in describe(model):
        print("  " + line)

    x_train = torch.from_numpy(tr_x.astype(np.float32) / 255.0)
    y_train = torch.from_numpy(tr_y.astype(np.int64))
    n = x_train.shape[0]
    steps_per_epoch = (n + args.batch_size - 1) // args.batch_size

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.wd},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.25,
                                                div_factor=10.0, final_div_factor=100.0)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    gen = torch.Generator().manual_seed(SEED)

    if args.bench:
        model.train()
        t0 = time.time()
        for i in range(20):
            idx = torch.randint(0, n, (args.batch_size,), generator=gen)
            xb = base.augment(torch, x_train[idx], gen, 0).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        dt = (time.time() - t0) / 20
        print("%.3f s/step -> %.1f s/epoch" % (dt, dt * steps_per_epoch))
        return 0

    t_train = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot_loss, tot_correct = 0.0, 0
        t0 = time.time()
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch_size:(s + 1) * args.batch_size]
            xb = base.augment(torch, x_train[idx], gen, 0)  # horizontal flip only
            xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y_train[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss) * yb.shape[0]
            tot_correct += int((out.argmax(1) == yb).sum())
        acc = base.evaluate(torch, model, te_x, te_y)
        print("epoch %d/%d  loss %.4f  train-acc %.4f  test-acc %.4f  (%.0fs)"
              % (epoch + 1, args.epochs, tot_loss / n, tot_correct / n, acc, time.time() - t0), flush=True)
    train_seconds = time.time() - t_train

    model = model.to(memory_format=torch.contiguous_format).eval()
    fused = fold_batch_norm(torch, nn, model)
    top1 = base.evaluate(torch, model, te_x, te_y)
    top1_fused = base.evaluate(torch, fused, te_x, te_y)
    with torch.no_grad():
        xs = torch.from_numpy(te_x[:2000].astype(np.float32) / 255.0)
        ref_all = model(xs).numpy()
        fused_diff = float(np.abs(fused(xs).numpy() - ref_all).max())
    top1_2000 = float((ref_all.argmax(1) == te_y[:2000]).mean())
    ref = ref_all[:256]
    print("final test top-1: %.4f (BN folded: %.4f, max |logit diff| %.3g); first 2000: %.4f  (training %.0fs)"
          % (top1, top1_fused, fused_diff, top1_2000, train_seconds))
    assert fused_diff < 1e-3, fused_diff

    # ---- ONNX export of the BN-folded model
    os.makedirs(models_dir, exist_ok=True)
    torch.onnx.export(fused, torch.zeros(1, 1, 28, 28), onnx_path, opset_version=13,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.EVAL,
                      do_constant_folding=True, export_params=True)

    import onnx
    m = onnx.load(onnx_path)
    m = base.inline_identity_initializers(constants_to_initializers(m))
    m.doc_string = ("ternion Fashion-MNIST MobileNetV2-style model (depthwise convs); "
                    "input: float32 [batch,1,28,28] pixels/255")
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, onnx_path)
    m = onnx.load(onnx_path)
    onnx.checker.check_model(onnx_path, full_check=True)
    op_types = sorted(set(nd.op_type for nd in m.graph.node))
    op_counts = {t: sum(1 for nd in m.graph.node if nd.op_type == t) for t in op_types}
    print("onnx ops:", op_counts)
    allowed = {"Sub", "Div", "Conv", "Clip", "Relu", "Add", "GlobalAveragePool", "Flatten", "Gemm"}
    assert set(op_types) <= allowed, set(op_types) - allowed
    from onnx import helper
    dw = [nd.name for nd in m.graph.node if nd.op_type == "Conv"
          and any(at.name == "group" and helper.get_attribute_value(at) > 1 for at in nd.attribute)]
    assert len(dw) == len(BLOCKS), dw
    x16 = te_x[:16].astype(np.float32) / 255.0
    np_check = float(np.abs(numpy_onnx_run(m, x16) - ref[:16]).max())
    print("numpy ONNX interpreter max |diff| vs PyTorch (16 images): %.3g" % np_check)
    assert np_check < 1e-3, np_check
    got = np.concatenate([numpy_onnx_run(m, te_x[i:i + 250].astype(np.float32) / 255.0)
                          for i in range(0, 1000, 250)])
    onnx_top1_1000 = float((got.argmax(1) == te_y[:1000]).mean())
    size = os.path.getsize(onnx_path)

    meta = {
        "name": NAME,
        "file": NAME + ".onnx",
        "task": "Fashion-MNIST 10-class image classification",
        "classes": base.CLASSES,
        "top1_test_pytorch": round(top1, 4),
        "top1_test_pytorch_first2000": round(top1_2000, 4),
        "test_images": int(te_x.shape[0]),
        "epochs": args.epochs,
        "seed": SEED,
        "params": int(n_params),
        "params_exported": int(sum(int(np.prod(t.dims)) for t in m.graph.initializer)),
        "onnx_bytes": size,
        "architecture": describe(model),
        "architecture_summary": summary(),
        "depthwise_convs": dw,
        "training": {"optimizer": "SGD nesterov momentum 0.9", "schedule": "OneCycle",
                     "max_lr": args.lr, "weight_decay": args.wd, "batch_size": args.batch_size,
                     "label_smoothing": 0.05, "augmentation": "horizontal flip only",
                     "threads": args.threads, "seconds": round(train_seconds, 1)},
        "command": " ".join([COMMAND] + sys.argv[1:]),
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": 13,
        "input": {"name": "image", "dtype": "float32", "shape": ["batch", 1, 28, 28],
                  "range": "[0,1] (uint8 pixel / 255)", "layout": "NCHW"},
        "output": {"name": "logits", "dtype": "float32", "shape": ["batch", 10]},
        "normalization": {"mean": MEAN, "std": STD, "where": "inside the graph (first Sub + Div nodes)",
                          "formula": "(x - mean) / std"},
        "batchnorm_folded": True,
        "activation": "ReLU6 (exported as Clip(0, 6))",
        "verification": {"onnx_checker": "full_check passed",
                         "bn_fold_max_abs_diff_2000": fused_diff,
                         "top1_test_pytorch_bn_folded": round(top1_fused, 4),
                         "numpy_interpreter_max_abs_diff_16": np_check,
                         "numpy_interpreter_top1_first1000": onnx_top1_1000},
        "onnx_op_counts": op_counts,
        "fixtures": dict(fixtures, written_by="tools/train_fashion_mnist.py"),
    }
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("wrote %s (%d bytes), %s (total %.0fs)" % (onnx_path, size, meta_path, time.time() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
