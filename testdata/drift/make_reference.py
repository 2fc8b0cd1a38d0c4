#!/usr/bin/env python3
"""Reference values for ferroserve's drift statistics (monitor::drift).

Builds a handful of fixed-seed cases and writes `reference.json` next to this
script with the inputs and the values scipy/numpy compute for them, to full
float precision (Python's repr, which round-trips).

Run from the repository root:

    python3 -m pip install --user scipy numpy   # only needed to regenerate
    python3 testdata/drift/make_reference.py

Generated with scipy 1.17.1 and numpy 2.4.6. The Rust tests in
`crates/ferroserve-monitor/src/drift/` read the JSON and require every
value within 1e-6 absolute; neither Python nor scipy is needed to run them.

Definitions mirrored here (each documented on the Rust side as well):

- histogram: `numpy.histogram` on the given edges after clipping values to
  `[edges[0], edges[-1]]`, so out-of-range values fall in the first/last bin.
- psi: Evidently's `psi` stattest: proportions, each 0 replaced by 0.0001,
  then `sum((ref - cur) * ln(ref / cur))`.
- ks_2samp: `scipy.stats.ks_2samp(a, b)` with the default `method='auto'`
  (exact when `max(n, m) <= 10000`). For the large case the Rust side uses
  the limiting Kolmogorov distribution instead of scipy's `kstwo`, so that
  case records both `scipy.stats.kstwobign.sf(sqrt(en) * d)` (what the Rust
  side must match) and scipy's own p-value (for information).
- ks_against_reference: the reference CDF is `numpy.interp(x, quantiles,
  probs)` with `probs = linspace(0, 1, len(quantiles))` (0 below the first
  quantile, 1 from the last); the statistic is the sup distance to the
  sample's empirical CDF, evaluated at every sample and quantile point from
  both sides; p = `kstwobign.sf(sqrt(n*m/(n+m)) * d)`.
- jensen_shannon: `scipy.spatial.distance.jensenshannon(p, q)` (natural log).
"""

import json
import os

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance


def floats(xs):
    return [float(x) for x in xs]


def evidently_psi(ref_counts, cur_counts):
    """Evidently's psi stattest on already-binned data."""
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    ref = ref / ref.sum()
    cur = cur / cur.sum()

    def sub_psi(ref_perc, curr_perc):
        if curr_perc == 0:
            curr_perc = 0.0001
        if ref_perc == 0:
            ref_perc = 0.0001
        return (ref_perc - curr_perc) * np.log(ref_perc / curr_perc)

    return float(sum(sub_psi(r, c) for r, c in zip(ref, cur)))


def clipped_histogram(values, edges):
    clipped = np.clip(values, edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return [int(c) for c in counts]


def ks_2samp_case(name, a, b):
    res = stats.ks_2samp(a, b)
    n, m = len(a), len(b)
    en = n * m / (n + m)
    case = {
        "name": name,
        "a": floats(a),
        "b": floats(b),
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "method": "exact" if max(n, m) <= 10000 else "asymp",
    }
    if case["method"] == "asymp":
        # Rust uses the limiting distribution on the asymptotic branch.
        case["scipy_p_value_kstwo"] = case["p_value"]
        case["p_value"] = float(stats.kstwobign.sf(np.sqrt(en) * res.statistic))
    return case


def ks_reference_case(name, quantiles, sample, reference_count):
    quantiles = np.asarray(quantiles, dtype=float)
    assert np.all(np.diff(quantiles) > 0), "np.interp needs increasing quantiles"
    probs = np.linspace(0.0, 1.0, len(quantiles))
    s = np.sort(np.asarray(sample, dtype=float))
    n = len(s)
    points = np.union1d(s, quantiles)
    ref_cdf = np.interp(points, quantiles, probs, left=0.0, right=1.0)
    # The reference CDF is continuous (strictly increasing quantiles), so only
    # the empirical CDF needs its left limit.
    ecdf_right = np.searchsorted(s, points, side="right") / n
    ecdf_left = np.searchsorted(s, points, side="left") / n
    d = float(max(np.max(np.abs(ecdf_right - ref_cdf)), np.max(np.abs(ecdf_left - ref_cdf))))
    en = n * reference_count / (n + reference_count)
    return {
        "name": name,
        "quantiles": floats(quantiles),
        "sample": floats(sample),
        "reference_count": int(reference_count),
        "statistic": d,
        "p_value": float(stats.kstwobign.sf(np.sqrt(en) * d)),
    }


def main():
    out = {
        "generator": "testdata/drift/make_reference.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
    }

    rng = np.random.default_rng(20261121)
    reference = rng.normal(0.0, 1.0, 600)
    current = rng.normal(0.4, 1.2, 450)
    edges = np.histogram_bin_edges(reference, bins=10)
    ref_counts = clipped_histogram(reference, edges)
    cur_counts = clipped_histogram(current, edges)

    out["histogram"] = [
        {
            "name": "shifted_normal_on_reference_edges",
            "values": floats(current),
            "edges": floats(edges),
            "counts": cur_counts,
        },
        {
            "name": "reference_on_own_edges",
            "values": floats(reference),
            "edges": floats(edges),
            "counts": ref_counts,
        },
        {
            "name": "ties_on_edges_and_out_of_range",
            "values": [-5.0, 0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 2.5, 3.0, 3.0, 7.0],
            "edges": [0.0, 1.0, 2.0, 3.0],
            "counts": clipped_histogram(
                np.array([-5.0, 0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 2.5, 3.0, 3.0, 7.0]),
                np.array([0.0, 1.0, 2.0, 3.0]),
            ),
        },
    ]

    psi_cases = [
        ("normal_vs_shifted_normal", ref_counts, cur_counts),
        ("identical", ref_counts, ref_counts),
        ("categorical_with_zero_bins", [10, 0, 30, 60], [0, 5, 35, 60]),
        ("proportions", [0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]),
    ]
    out["psi"] = [
        {"name": n, "expected": floats(e), "actual": floats(a), "psi": evidently_psi(e, a)}
        for n, e, a in psi_cases
    ]

    rng = np.random.default_rng(7)
    base = rng.normal(0.0, 1.0, 200)
    out["ks_2samp"] = [
        ks_2samp_case("normal_vs_shifted_normal_unequal_n",
                      base, rng.normal(0.3, 1.0, 300)),
        ks_2samp_case("equal_n_square_method",
                      rng.normal(0.0, 1.0, 100), rng.normal(0.25, 1.0, 100)),
        ks_2samp_case("identical", base, base.copy()),
        # The exact recursion rounds to just above 1 here; scipy then falls
        # back to its asymptotic branch (p ~ 1 either way).
        ks_2samp_case("interleaved_exact_overshoot",
                      np.arange(42) * 2.0, np.arange(42) * 2.0 + 1.0),
        ks_2samp_case("small_samples_with_ties",
                      rng.integers(0, 5, 12).astype(float),
                      rng.integers(1, 6, 9).astype(float)),
        ks_2samp_case("tiny_p_value",
                      rng.normal(0.0, 1.0, 60), rng.normal(2.0, 1.0, 45)),
        # Rounded to 3 decimals to keep the JSON small (ties are fine).
        ks_2samp_case("medium_exact",
                      np.round(rng.normal(0.0, 1.0, 1000), 3),
                      np.round(rng.normal(0.08, 1.0, 1500), 3)),
        # max(n, m) > 10000 takes scipy's asymptotic branch.
        ks_2samp_case("large_asymptotic",
                      np.round(rng.normal(0.0, 1.0, 10001), 2),
                      np.round(rng.normal(0.1, 1.0, 400), 2)),
    ]

    rng = np.random.default_rng(99)
    ref_data = rng.normal(10.0, 2.0, 5000)
    quantiles = np.quantile(ref_data, np.linspace(0.0, 1.0, 101))
    out["ks_reference"] = [
        ks_reference_case("shifted_sample_100_quantiles", quantiles,
                          rng.normal(10.5, 2.2, 800), 5000),
        ks_reference_case("same_distribution_100_quantiles", quantiles,
                          rng.normal(10.0, 2.0, 300), 5000),
        ks_reference_case("sample_beyond_reference_range", [0.0, 1.0, 3.0, 4.0],
                          [-1.0, 0.5, 0.5, 2.0, 3.5, 5.0], 40),
    ]

    js_cases = [
        ("probabilities_with_zero", [0.1, 0.4, 0.5, 0.0], [0.3, 0.3, 0.2, 0.2]),
        ("unnormalised_counts", [10.0, 0.0, 5.0], [3.0, 4.0, 3.0]),
        ("identical", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
        ("disjoint_support", [1.0, 0.0], [0.0, 1.0]),
    ]
    out["jensen_shannon"] = [
        {"name": n, "p": p, "q": q, "distance": float(distance.jensenshannon(p, q))}
        for n, p, q in js_cases
    ]

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
