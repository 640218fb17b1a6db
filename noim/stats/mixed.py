"""Linear mixed model with a random intercept per cluster, fitted by REML in closed form.

Model, for row j of cluster i (i = 1..G, n_i rows)::

    y_ij = x_ij' b + u_i + e_ij,   u_i ~ N(0, tau2),   e_ij ~ N(0, sigma2)

so Var(y_i) = sigma2 (I + g J) with g = tau2 / sigma2 >= 0 and J the n_i x n_i matrix of
ones. (I + g J)^-1 = I - w_i J with w_i = g / (1 + g n_i), |I + g J| = 1 + g n_i, hence with
the cluster sums s_i = X_i'1 and t_i = y_i'1::

    A(g) = X'H^-1 X = X'X - sum_i w_i s_i s_i'
    c(g) = X'H^-1 y = X'y - sum_i w_i s_i t_i
    b(g) = A^-1 c,   r(g) = y'H^-1 y - c'b

Profiling out b and sigma2 (sigma2 = r / (n - p)) leaves the REML criterion (lme4's
``REMLcrit``, -2 x restricted log-likelihood)::

    d(g) = sum_i log(1 + g n_i) + log|A(g)| + (n - p) (1 + log(2 pi r(g) / (n - p)))

minimised over the single ratio g >= 0. Each evaluation costs O(G p^2) after one pass over
the data (and, as w_i depends only on n_i, O(K p^2) with K distinct cluster sizes once the
cluster sums are folded by size). Its derivative is closed form too (envelope theorem for r)::

    d'(g) = sum_i n_i / (1 + g n_i) - tr(A^-1 sum_i w_i' s_i s_i')
            - (n - p) sum_i w_i' (t_i - s_i'b)^2 / r,      w_i' = 1 / (1 + g n_i)^2

The minimiser is found on a log grid of g (plus g = 0) and refined with Brent's root finder
on d'(g) in the bracket around the best grid point; when d'(0) >= 0 and g = 0 is the best
point the estimate is on the boundary (tau2 = 0, lme4's "singular fit"). The fixed-effect
covariance is sigma2 A(g)^-1 at the REML estimates: the standard errors lme4 reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from noim.stats._base import StatsInputError
from noim.stats.design import FloatArray, IntArray, cluster_sums


@dataclass(frozen=True)
class MixedFit:
    """REML estimates of the random-intercept model."""

    params: FloatArray
    cov: FloatArray
    sigma2: float  # residual variance
    tau2: float  # between-cluster (random intercept) variance
    reml_criterion: float  # -2 restricted log-likelihood, as lme4's REMLcrit()
    boundary: bool  # tau2 estimated at 0


class _Profile:
    """The profiled REML criterion and its derivative in g.

    w_i depends on the cluster only through its size n_i, so the cluster sums are folded once
    into per-size totals (K distinct sizes): M_k = sum s_i s_i', m_k = sum s_i t_i,
    q_k = sum t_i^2 over clusters of size k. Each evaluation then costs O(K p^2 + p^3).
    """

    def __init__(self, y: FloatArray, X: FloatArray, codes: IntArray, n_clusters: int) -> None:
        self.n, self.p = X.shape
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        S = cluster_sums(X, codes, n_clusters)
        t = cluster_sums(y, codes, n_clusters)
        ni = np.bincount(codes, minlength=n_clusters)
        sizes, size_of = np.unique(ni, return_inverse=True)
        self.sizes = sizes.astype(np.float64)
        self.count = np.bincount(size_of).astype(np.float64)  # clusters of each size
        K = len(sizes)
        self.M = np.empty((K, self.p, self.p))
        self.m = np.empty((K, self.p))
        self.q = np.empty(K)
        order = np.argsort(size_of, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(size_of))])
        for k in range(K):  # loop over distinct cluster sizes, not rows or clusters
            idx = order[bounds[k] : bounds[k + 1]]
            Sk, tk = S[idx], t[idx]
            self.M[k] = Sk.T @ Sk
            self.m[k] = Sk.T @ tk
            self.q[k] = float(tk @ tk)

    def solve(self, g: float) -> tuple[FloatArray, FloatArray, float]:
        w = g / (1.0 + g * self.sizes)
        A = self.XtX - np.tensordot(w, self.M, axes=1)
        c = self.Xty - w @ self.m
        b = np.asarray(np.linalg.solve(A, c), dtype=np.float64)
        r = self.yty - float(w @ self.q) - float(c @ b)
        return A, b, r

    def criterion(self, g: float) -> float:
        A, _, r = self.solve(g)
        dof = self.n - self.p
        if r <= 0:
            return np.inf
        logdet = np.linalg.slogdet(A)[1]
        return float(
            (self.count * np.log1p(g * self.sizes)).sum()
            + logdet
            + dof * (1.0 + np.log(2.0 * np.pi * r / dof))
        )

    def derivative(self, g: float) -> float:
        A, b, r = self.solve(g)
        dw = 1.0 / (1.0 + g * self.sizes) ** 2
        Md = np.tensordot(dw, self.M, axes=1)
        # sum_i w_i' (t_i - s_i'b)^2 = sum_k w_k' (q_k - 2 b'm_k + b'M_k b)
        resid = self.q - 2.0 * (self.m @ b) + np.einsum("i,kij,j->k", b, self.M, b)
        return float(
            (self.count * self.sizes / (1.0 + g * self.sizes)).sum()
            - np.trace(np.linalg.solve(A, Md))
            - (self.n - self.p) * float(dw @ resid) / r
        )


def fit_random_intercept(
    y: FloatArray, X: FloatArray, codes: IntArray, n_clusters: int, where: str
) -> MixedFit:
    """REML fit of y = X b + u_cluster + e (see the module docstring)."""
    ni = np.bincount(codes, minlength=n_clusters)
    if n_clusters < 2:
        raise StatsInputError(
            f"{where}: method 'mixed' got {n_clusters} cluster(s); expected at least 2"
        )
    if ni.max() < 2:
        raise StatsInputError(
            f"{where}: method 'mixed': every one of the {n_clusters} clusters has a single row, "
            "so the between-cluster variance cannot be told apart from the residual variance "
            "(lme4 refuses this too); expected some clusters with 2 or more rows (or use "
            "method='ancova')"
        )
    prof = _Profile(y, X, codes, n_clusters)
    if prof.solve(0.0)[2] <= 1e-24 * max(prof.yty, 1.0):
        raise StatsInputError(
            f"{where}: method 'mixed': the outcome is fitted exactly by arm and covariates "
            "(zero residual variance); expected residual variation"
        )
    grid = np.concatenate([[0.0], np.logspace(-6, 6, 49)])
    values = np.array([prof.criterion(g) for g in grid])
    best = int(np.argmin(values))
    if not np.isfinite(values[best]):
        raise StatsInputError(
            f"{where}: method 'mixed': the outcome is fitted exactly by the covariates "
            "(zero residual variance); expected residual variation"
        )
    if best == len(grid) - 1:
        raise StatsInputError(
            f"{where}: method 'mixed': the between-cluster to residual variance ratio runs to "
            f"infinity (> {grid[-1]:g}): the outcome hardly varies within clusters; expected a "
            "finite ratio (use method='ancova' with cluster=, or method='gee')"
        )
    g = 0.0
    lo = grid[max(best - 1, 0)]
    hi = grid[best + 1]
    d_lo = prof.derivative(lo)
    d_hi = prof.derivative(hi)
    if best == 0 and d_lo >= 0:
        g = 0.0
    elif d_lo < 0 < d_hi:
        g = float(optimize.brentq(prof.derivative, lo, hi, xtol=1e-14, rtol=1e-13, maxiter=200))
    else:  # the minimum lies on one side of the grid point: search both neighbouring intervals
        g = float(
            optimize.minimize_scalar(
                prof.criterion, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}
            ).x
        )
        if prof.criterion(0.0) <= prof.criterion(g):
            g = 0.0
    A, b, r = prof.solve(g)
    sigma2 = r / (prof.n - prof.p)
    cov = sigma2 * np.linalg.inv(A)
    return MixedFit(
        params=b,
        cov=cov,
        sigma2=sigma2,
        tau2=g * sigma2,
        reml_criterion=prof.criterion(g),
        boundary=g == 0.0,
    )
