"""Report statistics against their library definitions."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from gdo_opt.subset.report import js_divergence


@pytest.mark.parametrize("seed", range(6))
def test_js_divergence_equals_scipy_squared_distance(seed):
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 50, size=12).astype(float)
    q = rng.integers(0, 50, size=12).astype(float)
    p[rng.integers(12)] = 0  # zeros on one side only are the edge case
    p[0], q[0] = 1, 0
    assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)


def test_js_divergence_bounds():
    assert js_divergence(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    assert js_divergence(np.array([2.0, 3]), np.array([4.0, 6])) == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(js_divergence(np.zeros(3), np.ones(3)))
