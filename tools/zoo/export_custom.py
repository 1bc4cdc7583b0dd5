#!/usr/bin/python3
"""Exports small architectures of kinds torchvision does not have (random weights, opset 17,
symbolic batch) to ONNX, for tools/zoo/check-zoo.js: a U-Net (ConvTranspose, skip Concat,
bilinear Resize), a YOLO-style detector (Conv-BN-SiLU, CSP Split/Concat, SPPF MaxPools, nearest
Upsample, a head reshaped and transposed), a CRNN for audio (Conv1d, bidirectional GRU), an LSTM
text classifier (Embedding, 2-layer bidirectional LSTM), a WaveNet-style stack (dilated Conv1d,
tanh * sigmoid gates), a Transformer encoder (nn.TransformerEncoder with a padding mask) and a
small GPT-style decoder (causal mask, learned positions, tied LM head). Written to build/zoo,
not committed, not run by CI.

    /usr/bin/python3 tools/zoo/export_custom.py [--out build/zoo] [--only unet,yolo,...]
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn_act(cin, cout, k=3, s=1, act=nn.SiLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), act())


class UNet(nn.Module):
    def __init__(self, c=16, classes=2):
        super().__init__()
        self.e1 = nn.Sequential(conv_bn_act(3, c, act=nn.ReLU), conv_bn_act(c, c, act=nn.ReLU))
        self.e2 = nn.Sequential(conv_bn_act(c, 2 * c, s=2, act=nn.ReLU), conv_bn_act(2 * c, 2 * c, act=nn.ReLU))
        self.e3 = nn.Sequential(conv_bn_act(2 * c, 4 * c, s=2, act=nn.ReLU), conv_bn_act(4 * c, 4 * c, act=nn.ReLU))
        self.up3 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.d2 = conv_bn_act(4 * c, 2 * c, act=nn.ReLU)
        self.d1 = conv_bn_act(3 * c, c, act=nn.ReLU)
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        d = self.d2(torch.cat([self.up3(c), b], 1))
        d = F.interpolate(d, scale_factor=2, mode="bilinear", align_corners=False)
        return self.head(self.d1(torch.cat([d, a], 1)))


class CSP(nn.Module):
    def __init__(self, c, n=1):
        super().__init__()
        self.cv1 = conv_bn_act(c, c, 1)
        self.blocks = nn.ModuleList(nn.Sequential(conv_bn_act(c // 2, c // 2), conv_bn_act(c // 2, c // 2)) for _ in range(n))
        self.cv2 = conv_bn_act(c // 2 * (2 + n), c, 1)

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        for b in self.blocks:
            y.append(y[-1] + b(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cv1 = conv_bn_act(c, c // 2, 1)
        self.cv2 = conv_bn_act(c * 2, c, 1)

    def forward(self, x):
        x = self.cv1(x)
        y1 = F.max_pool2d(x, 5, 1, 2)
        y2 = F.max_pool2d(y1, 5, 1, 2)
        return self.cv2(torch.cat([x, y1, y2, F.max_pool2d(y2, 5, 1, 2)], 1))


class Yolo(nn.Module):
    def __init__(self, classes=8, anchors=3):
        super().__init__()
        self.no = classes + 5
        self.na = anchors
        self.stem = conv_bn_act(3, 16, 3, 2)
        self.s1 = nn.Sequential(conv_bn_act(16, 32, 3, 2), CSP(32))
        self.s2 = nn.Sequential(conv_bn_act(32, 64, 3, 2), CSP(64, 2))
        self.s3 = nn.Sequential(conv_bn_act(64, 128, 3, 2), CSP(128), SPPF(128))
        self.lat = conv_bn_act(128 + 64, 64, 1)
        self.h1 = nn.Conv2d(64, anchors * self.no, 1)
        self.h2 = nn.Conv2d(128, anchors * self.no, 1)

    def head(self, conv, x):
        b, _, h, w = x.shape
        y = conv(x).view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).sigmoid()
        return y.reshape(b, -1, self.no)

    def forward(self, x):
        p3 = self.s2(self.s1(self.stem(x)))
        p4 = self.s3(p3)
        f = self.lat(torch.cat([F.interpolate(p4, scale_factor=2, mode="nearest"), p3], 1))
        return torch.cat([self.head(self.h1, f), self.head(self.h2, p4)], 1)


class CRNN(nn.Module):
    """Audio: log-mel frames [batch, 40, time] -> per-frame class scores."""

    def __init__(self, mels=40, hidden=64, classes=12):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(mels, 64, 5, padding=2), nn.BatchNorm1d(64), nn.ReLU(),
                                  nn.Conv1d(64, 64, 3, padding=1, stride=2), nn.BatchNorm1d(64), nn.ReLU())
        self.gru = nn.GRU(64, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        y, _ = self.gru(self.conv(x).transpose(1, 2))
        return self.fc(y)


class LSTMClassifier(nn.Module):
    def __init__(self, vocab=1000, dim=64, hidden=96, classes=4):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, ids):
        y, (h, _) = self.lstm(self.emb(ids))
        return self.fc(torch.cat([h[-2], h[-1]], 1)) + self.fc(y.mean(1))


class WaveNet(nn.Module):
    def __init__(self, c=32, layers=6):
        super().__init__()
        self.inp = nn.Conv1d(1, c, 1)
        self.filt = nn.ModuleList(nn.Conv1d(c, c, 2, dilation=2 ** i, padding=2 ** i) for i in range(layers))
        self.gate = nn.ModuleList(nn.Conv1d(c, c, 2, dilation=2 ** i, padding=2 ** i) for i in range(layers))
        self.res = nn.ModuleList(nn.Conv1d(c, c, 1) for _ in range(layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(c, c, 1), nn.ReLU(), nn.Conv1d(c, 16, 1))

    def forward(self, x):
        h = self.inp(x)
        t = x.shape[-1]
        skip = 0
        for f, g, r in zip(self.filt, self.gate, self.res):
            z = torch.tanh(f(h)[..., :t]) * torch.sigmoid(g(h)[..., :t])
            h = h + r(z)
            skip = skip + z
        return self.out(skip)


class Encoder(nn.Module):
    def __init__(self, vocab=1000, dim=128, heads=4, layers=2, classes=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, 64, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, activation="gelu")
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.fc = nn.Linear(dim, classes)

    def forward(self, ids, attention_mask):
        x = self.emb(ids) + self.pos[:, : ids.shape[1]]
        y = self.enc(x, src_key_padding_mask=attention_mask == 0)
        m = attention_mask.unsqueeze(-1).float()
        return self.fc((y * m).sum(1) / m.sum(1))


class GPT(nn.Module):
    def __init__(self, vocab=1000, dim=96, heads=4, layers=2, ctx=64):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(ctx, dim)
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(ln1=nn.LayerNorm(dim), qkv=nn.Linear(dim, 3 * dim), proj=nn.Linear(dim, dim),
                                                       ln2=nn.LayerNorm(dim), fc=nn.Linear(dim, 4 * dim), out=nn.Linear(4 * dim, dim)))
                                    for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.heads = heads

    def forward(self, ids):
        b, t = ids.shape
        x = self.tok(ids) + self.pos(torch.arange(t).unsqueeze(0))
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        for blk in self.blocks:
            q, k, v = blk["qkv"](blk["ln1"](x)).split(x.shape[-1], -1)
            q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-1, -2)) / (q.shape[-1] ** 0.5)
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            x = x + blk["proj"]((att @ v).transpose(1, 2).reshape(b, t, -1))
            x = x + blk["out"](F.gelu(blk["fc"](blk["ln2"](x)), approximate="tanh"))
        return self.ln(x) @ self.tok.weight.t()


def specs():
    ids = torch.randint(0, 1000, (1, 24))
    mask = torch.ones(1, 24, dtype=torch.long)
    mask[0, 20:] = 0
    seq = {0: "batch", 1: "sequence"}
    return {
        "unet": (UNet(), (torch.rand(1, 3, 128, 128),), ["image"], {"image": {0: "batch"}}),
        "yolo": (Yolo(), (torch.rand(1, 3, 320, 320),), ["image"], {"image": {0: "batch"}}),
        "crnn": (CRNN(), (torch.randn(1, 40, 100),), ["features"], {"features": {0: "batch", 2: "time"}}),
        "lstm_classifier": (LSTMClassifier(), (ids,), ["input_ids"], {"input_ids": seq}),
        "wavenet": (WaveNet(), (torch.randn(1, 1, 800),), ["audio"], {"audio": {0: "batch"}}),
        "transformer_encoder": (Encoder(), (ids, mask), ["input_ids", "attention_mask"], {"input_ids": seq, "attention_mask": seq}),
        "gpt_tiny": (GPT(), (ids,), ["input_ids"], {"input_ids": seq}),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "zoo"))
    p.add_argument("--only", default=None)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    all_specs = specs()
    for name in (args.only.split(",") if args.only else all_specs):
        model, sample, inputs, axes = all_specs[name]
        model.eval()
        # BatchNorm statistics that are not the identity, so folding them is exercised.
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        axes = {**axes, "logits": {0: "batch"}}
        # Newer torch exports through dynamo by default: ask for the TorchScript exporter.
        legacy = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        torch.onnx.export(model, sample, os.path.join(args.out, f"{name}.onnx"), opset_version=17, input_names=inputs,
                          output_names=["logits"], dynamic_axes=axes, **legacy)
        print("exported", name, flush=True)


if __name__ == "__main__":
    main()
