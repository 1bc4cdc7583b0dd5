#!/usr/bin/python3
"""Fits the float32 erf of native/exec/ops/activations.cc and checks it, emulating its float32
arithmetic (Horner by fused multiply-adds, as the C++ has them; the exp is exp_in_range's):

    |x| <= 1:      erf(x) = x P(x^2)                        P of degree 6 in x^2
    1 < |x| <= 4:  erf(x) = 1 - e^(-x^2) Q(|x| - 2.5)        Q ~ erfc(x) e^(x^2), degree 11
    |x| > 4:       1 (erfc(4) = 1.5e-8 is below half an ulp of 1)

Least squares on Chebyshev-spaced points (relative error), coefficients rounded to float32, then
the worst error in ulps against Python's double erf over 220,000 points. Prints the
coefficients to paste into the C++, lowest first (last run, with fused multiply-adds: worst 2 ulps,
near |x| = 1).

    /usr/bin/python3 tools/fit-erf.py
"""
import math

import numpy as np

f32 = np.float32


def fit():
    xa = np.cos(np.linspace(0, np.pi, 4000)) * 0.5 + 0.5
    xa = xa[xa > 1e-6]
    ya = np.array([math.erf(v) / v for v in xa])
    ca, *_ = np.linalg.lstsq(np.vstack([xa ** (2 * k) for k in range(7)]).T, ya, rcond=None)
    xb = 2.5 + 1.5 * np.cos(np.linspace(0, np.pi, 4000))
    yb = np.array([math.erfc(v) * math.exp(v * v) for v in xb])
    w = 1 / yb
    cb, *_ = np.linalg.lstsq(np.vstack([(xb - 2.5) ** k for k in range(12)]).T * w[:, None], yb * w, rcond=None)
    return [f32(c) for c in ca], [f32(c) for c in cb]


def fma(a, b, c):
    """float32 a * b + c rounded once (fmaf): the product is exact in double, the sum rounds to
    double, and where that lands on a float32 tie the sum's rounding error breaks it."""
    p = float(a) * float(b)
    s = p + float(c)
    t = s - p
    err = (p - (s - t)) + (float(c) - t)  # s + err is the exact sum (TwoSum)
    r = f32(s)
    if err != 0 and float(r) != s:
        other = np.nextafter(r, f32(math.inf) if float(r) < s else f32(-math.inf))
        lo, hi = sorted((float(r), float(other)))
        if s - lo == hi - s:  # a tie only after the first rounding: the exact sum decides
            r = f32(hi) if err > 0 else f32(lo)
    return r


def horner(t, coefficients):
    """c[0] t^(n-1) + ... + c[n-1], highest first (the C++ horner()), a fused multiply-add a step."""
    p = f32(coefficients[0])
    for c in coefficients[1:]:
        p = fma(p, t, f32(c))
    return p


def exp_in_range(x):
    magic = f32(12582912.0)
    n = fma(x, f32(1.44269504088896341), magic) - magic
    r = fma(n, f32(2.12194440e-4), fma(n, f32(-0.693359375), x))
    p = horner(r, (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
    return (fma(p, r * r, r) + f32(1)) * np.ldexp(f32(1), int(n)).astype(np.float32)


def erf32(x, ca, cb):
    xc = min(abs(f32(x)), f32(4))
    x2 = xc * xc
    p = horner(x2, list(reversed(ca)))
    q = horner(xc - f32(2.5), list(reversed(cb)))
    r = xc * p if xc <= f32(1) else fma(-exp_in_range(-x2), q, f32(1))
    return f32(math.copysign(float(r), float(x)))


def worst_ulps(approx, exact, xs):
    """The largest distance, in ulps of the rounded value, from approx(x) to f32(exact(x)), and its x."""
    worst, at = 0.0, None
    for v in xs:
        got, want = approx(v), f32(exact(float(v)))
        if want != 0:
            ulps = abs(float(got) - float(want)) / float(np.spacing(abs(want)))
            if ulps > worst:
                worst, at = ulps, float(v)
    return worst, at


def main():
    ca, cb = fit()
    xs = np.concatenate([np.linspace(-6, 6, 200001).astype(np.float32), (f32(10) ** np.linspace(-8, 0.7, 20001)).astype(np.float32)])
    worst, at = worst_ulps(lambda v: erf32(v, ca, cb), math.erf, xs)
    print(f"worst {worst} ulps at x = {at}")
    print("P:", ", ".join(f"{float(c):.9e}f" for c in ca))
    print("Q:", ", ".join(f"{float(c):.9e}f" for c in cb))


if __name__ == "__main__":
    main()
