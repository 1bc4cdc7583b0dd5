#!/usr/bin/python3
"""Exports small scripted PyTorch models whose ONNX graphs hold control flow, as torch.onnx writes
it for TorchScript: If nodes for data-dependent branches (with outer values read inside the
branches), Loop nodes for `for` loops over a tensor's size and `while` loops on a tensor
condition. Seeded random weights. test/control-flow.test.ts runs them against onnxruntime-node;
the files are committed (a few KB) so the tests need no Python.

    /usr/bin/python3 tools/export_control_flow_models.py      -> test/fixtures/torch-*.onnx

  torch-if-branches.onnx   x [batch, 8, 6, 6]: a conv block on one branch, a different block on
      the other, chosen by the sign of the input's mean; a nested If squeezes a size-1 batch
      (outputs of different rank on the two paths). Outputs y, z.
  torch-loop-rnn.onnx      x [seq, batch, 16], h0 [batch, 24]: a hand-written Elman RNN, one Loop
      iteration per time step (trip count from x's shape), the state carried; output h.
  torch-while-halve.onnx   x [batch, 10]: halves x while its norm exceeds a limit (a Loop with a
      condition and no trip count), counting the iterations; outputs y, n.

Opset 13, batch (and seq) dims symbolic.
"""
import os

import torch
from torch import nn

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))


class IfBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)
        self.scale = nn.Parameter(torch.randn(8, 1, 1))

    def forward(self, x):
        if bool(x.mean() > 0):
            y = torch.relu(self.a(x)) + x
        else:
            y = self.b(x) * self.scale
        if x.size(0) == 1:
            z = y.squeeze(0)
        else:
            z = y
        return y, z


class LoopRnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.w_in = nn.Parameter(torch.randn(16, 24) * 0.3)
        self.w_h = nn.Parameter(torch.randn(24, 24) * 0.2)
        self.bias = nn.Parameter(torch.randn(24) * 0.1)

    def forward(self, x, h):
        for t in range(x.size(0)):
            h = torch.tanh(x[t] @ self.w_in + h @ self.w_h + self.bias)
        return h


class WhileHalve(nn.Module):
    def forward(self, x):
        n = torch.zeros([1], dtype=torch.long)
        while bool((x * x).sum() > 16.0):
            x = x * 0.5
            n = n + 1
        return x, n


def export(module, name, example, inputs, outputs, dynamic):
    scripted = torch.jit.script(module)
    path = os.path.join(OUT, name)
    torch.onnx.export(scripted, example, path, opset_version=13, input_names=inputs, output_names=outputs,
                      dynamic_axes=dynamic)
    print(path, os.path.getsize(path), 'bytes')


def main():
    torch.manual_seed(7)
    os.makedirs(OUT, exist_ok=True)
    export(IfBranches().eval(), 'torch-if-branches.onnx', (torch.randn(2, 8, 6, 6),), ['x'], ['y', 'z'],
           {'x': {0: 'batch'}, 'y': {0: 'batch'}})
    export(LoopRnn().eval(), 'torch-loop-rnn.onnx', (torch.randn(5, 3, 16), torch.zeros(3, 24)), ['x', 'h0'], ['h'],
           {'x': {0: 'seq', 1: 'batch'}, 'h0': {0: 'batch'}, 'h': {0: 'batch'}})
    export(WhileHalve().eval(), 'torch-while-halve.onnx', (torch.randn(2, 10) * 5,), ['x'], ['y', 'n'],
           {'x': {0: 'batch'}, 'y': {0: 'batch'}})


if __name__ == '__main__':
    main()
