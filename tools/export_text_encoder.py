#!/usr/bin/python3
"""Exports a BERT-style text encoder with seeded random weights to ONNX, written the way Hugging
Face's BERT is: token, position and segment embeddings, an additive attention mask from a 0/1
int64 mask, exact-erf GELU, post-norm residual blocks. Inputs input_ids, attention_mask,
token_type_ids (int64 [batch, sequence], both axes symbolic); output last_hidden_state
[batch, sequence, hidden]. The models with several non-float inputs that Node services run
(sentence embeddings), for quantize()'s calibration by input name and `ternion bench`.

    /usr/bin/python3 tools/export_text_encoder.py --size tiny     -> models/tiny-text-encoder.onnx
        (2 layers, hidden 64, 4 heads, FFN 128, 512 tokens, opset 14: committed, used by tests)
    /usr/bin/python3 tools/export_text_encoder.py --size minilm   -> build/zoo/minilm_l6_opset{14,17}.onnx
        (all-MiniLM-L6-v2's shape: 6 layers, hidden 384, 12 heads, FFN 1536, 30522 tokens; 90 MB
        each, not committed: by-hand checks with tools/zoo/check-zoo.js and `ternion bench`)

opset 14 exports LayerNorm as its ReduceMean / Sub / Pow / Sqrt / Div chain, opset 17 as one
LayerNormalization node.
"""
import argparse
import math
import os

import torch
from torch import nn


class Layer(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads, self.dh = heads, hidden // heads
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.up, self.down = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.dh).permute(0, 2, 1, 3)

    def forward(self, x, mask_add):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + mask_add
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3)
        ctx = ctx.reshape(x.shape)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.down(nn.functional.gelu(self.up(x))))


class Encoder(nn.Module):
    def __init__(self, vocab=30522, hidden=384, layers=6, heads=12, ffn=1536, max_pos=512):
        super().__init__()
        self.word, self.pos, self.seg = nn.Embedding(vocab, hidden), nn.Embedding(max_pos, hidden), nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(Layer(hidden, heads, ffn) for _ in range(layers))
        for m in self.modules():  # BERT's initialization: N(0, 0.02), zero biases
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0, 0.02)
            if isinstance(m, nn.Linear):
                m.bias.data.normal_(0, 0.02)

    def forward(self, input_ids, attention_mask, token_type_ids):
        positions = torch.arange(input_ids.shape[1], dtype=torch.long).unsqueeze(0)
        x = self.ln(self.word(input_ids) + self.pos(positions) + self.seg(token_type_ids))
        mask_add = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, mask_add)
        return x


SIZES = {
    "tiny": dict(config=dict(vocab=512, hidden=64, layers=2, heads=4, ffn=128, max_pos=64), opsets=(14,),
                 out="models", name="tiny-text-encoder.onnx"),
    "minilm": dict(config=dict(), opsets=(14, 17), out=os.path.join("build", "zoo"), name="minilm_l6_opset{opset}.onnx"),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--out", help="folder (default: models/ for tiny, build/zoo for minilm)")
    args = p.parse_args()
    size = SIZES[args.size]
    out = args.out or os.path.join(os.path.dirname(__file__), "..", size["out"])
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    m = Encoder(**size["config"]).eval()
    ids = torch.randint(0, m.word.num_embeddings, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 10:] = 0
    seg = torch.zeros(2, 16, dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    for opset in size["opsets"]:
        path = os.path.join(out, size["name"].format(opset=opset))
        torch.onnx.export(m, (ids, mask, seg), path, opset_version=opset,
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes})
        print("exported", path, flush=True)


if __name__ == "__main__":
    main()
