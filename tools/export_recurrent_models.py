#!/usr/bin/python3
"""Exports small PyTorch recurrent models with seeded random weights to ONNX, as torch.onnx writes
them: one LSTM / GRU / RNN node per layer and direction set, with the Transpose / Reshape that
joins a bidirectional layer's two halves before the next layer, and Slices of the initial states
per layer. test/recurrent-ops.test.ts runs them against onnxruntime-node; the files are committed
(a few tens of KB) so the tests need no Python.

    /usr/bin/python3 tools/export_recurrent_models.py      -> test/fixtures/torch-*.onnx

  torch-lstm-2layer-bidirectional.onnx  nn.LSTM(10, 16, num_layers=2, bidirectional, batch_first),
      inputs x [batch, seq, 10], h0 / c0 [4, batch, 16]; outputs y [batch, seq, 32], h, c [4, batch, 16]
  torch-gru-2layer.onnx                 nn.GRU(10, 12, num_layers=2) (linear_before_reset = 1),
      input x [seq, batch, 10], no initial state; outputs y [seq, batch, 12], h [2, batch, 12]
  torch-rnn-relu-bidirectional.onnx     nn.RNN(10, 9, nonlinearity='relu', bidirectional),
      inputs x [seq, batch, 10], h0 [2, batch, 9]; outputs y [seq, batch, 18], h [2, batch, 9]

Batch and sequence length are symbolic (dynamic axes), opset 14.
"""
import os

import torch
from torch import nn

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))


class WithStates(nn.Module):
    """The layer's outputs as a tuple, the initial states as inputs."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, *states):
        if isinstance(self.layer, nn.LSTM):
            y, (h, c) = self.layer(x, states) if states else self.layer(x)
            return y, h, c
        y, h = self.layer(x, states[0]) if states else self.layer(x)
        return y, h


def export(name, layer, example, inputs, outputs, axes):
    model = WithStates(layer).eval()
    path = os.path.join(OUT, name)
    torch.onnx.export(model, example, path, input_names=inputs, output_names=outputs, opset_version=14, dynamic_axes=axes)
    print(f'{path}: {os.path.getsize(path)} bytes')


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(2024)
    batch, seq = 3, 6

    lstm = nn.LSTM(10, 16, num_layers=2, bidirectional=True, batch_first=True)
    export('torch-lstm-2layer-bidirectional.onnx', lstm,
           (torch.randn(batch, seq, 10), torch.randn(4, batch, 16), torch.randn(4, batch, 16)),
           ['x', 'h0', 'c0'], ['y', 'h', 'c'],
           {'x': {0: 'batch', 1: 'seq'}, 'h0': {1: 'batch'}, 'c0': {1: 'batch'}, 'y': {0: 'batch', 1: 'seq'},
            'h': {1: 'batch'}, 'c': {1: 'batch'}})

    gru = nn.GRU(10, 12, num_layers=2)
    export('torch-gru-2layer.onnx', gru, (torch.randn(seq, batch, 10),), ['x'], ['y', 'h'],
           {'x': {0: 'seq', 1: 'batch'}, 'y': {0: 'seq', 1: 'batch'}, 'h': {1: 'batch'}})

    rnn = nn.RNN(10, 9, nonlinearity='relu', bidirectional=True)
    export('torch-rnn-relu-bidirectional.onnx', rnn, (torch.randn(seq, batch, 10), torch.randn(2, batch, 9)),
           ['x', 'h0'], ['y', 'h'],
           {'x': {0: 'seq', 1: 'batch'}, 'h0': {1: 'batch'}, 'y': {0: 'seq', 1: 'batch'}, 'h': {1: 'batch'}})


if __name__ == '__main__':
    main()
