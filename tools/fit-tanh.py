#!/usr/bin/python3
"""Fits the float32 tanh of native/exec/ops/activations.cc and checks it, emulating its float32
arithmetic (Horner by fused multiply-adds; the exp is exp_in_range's, tools/fit-erf.py):

    |x| <= 0.625:       tanh(x) = x P(x^2)                      P of degree 6 in x^2
    0.625 < |x| <= 9.1: tanh(x) = 1 - 2 / (1 + e^(2|x|))         (no cancellation: tanh > 0.55)
    beyond:             1 (tanh(9.1) rounds to 1), with x's sign

Least squares on Chebyshev-spaced points (relative error), coefficients rounded to float32, then
the worst error in ulps of the rounded value against Python's double tanh. Prints the
coefficients to paste into the C++ (last run, with fused multiply-adds: worst 1 ulp).

    /usr/bin/python3 tools/fit-tanh.py
"""
import math

import numpy as np

import os
from importlib.machinery import SourceFileLoader

f32 = np.float32
_fit_erf = SourceFileLoader("fit_erf", os.path.join(os.path.dirname(__file__), "fit-erf.py")).load_module()
exp_in_range, horner, worst_ulps = _fit_erf.exp_in_range, _fit_erf.horner, _fit_erf.worst_ulps
EDGE = 0.625


def fit():
    x = (np.cos(np.linspace(0, np.pi, 4000)) * 0.5 + 0.5) * EDGE
    x = x[x > 1e-6]
    y = np.array([math.tanh(v) / v for v in x])
    c, *_ = np.linalg.lstsq(np.vstack([x ** (2 * k) for k in range(7)]).T, y, rcond=None)
    return [f32(v) for v in c]


def tanh32(x, c):
    xc = min(abs(f32(x)), f32(9.1))
    x2 = xc * xc
    p = horner(x2, list(reversed(c)))
    r = xc * p if xc <= f32(EDGE) else f32(1) - f32(2) / (f32(1) + exp_in_range(f32(2) * xc))
    return f32(math.copysign(float(r), float(x)))


def main():
    c = fit()
    xs = np.concatenate([np.linspace(-10, 10, 200001).astype(np.float32), (f32(10) ** np.linspace(-8, 1, 20001)).astype(np.float32)])
    worst, at = worst_ulps(lambda v: tanh32(v, c), math.tanh, xs)
    print(f"worst {worst} ulps at x = {at}")
    print("P:", ", ".join(f"{float(v):.9e}f" for v in c))


if __name__ == "__main__":
    main()
