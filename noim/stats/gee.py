"""GEE for a continuous outcome: identity link, exchangeable working correlation, sandwich SE.

For cluster i with n_i rows, residuals e_i = y_i - X_i b, the working covariance is
phi R_i with R_i = (1 - a) I + a J (exchangeable). The moment estimators follow geepack
(Halekoh, Hojsgaard & Yan 2006), dividing by N and by the number of pairs, not by N - p
(statsmodels: ``GEE(...).fit(ddof_scale=0)``)::

    phi = sum_ij e_ij^2 / N
    a   = sum_i sum_{j<k} e_ij e_ik / (phi * sum_i n_i (n_i - 1) / 2)

R_i^-1 = (I - c_i J) / (1 - a) with c_i = a / (1 + (n_i - 1) a), so with cluster sums
s_i = X_i'1, t_i = y_i'1 and E_i = e_i'1 everything is closed form::

    B = sum_i X_i' R_i^-1 X_i = (X'X - sum_i c_i s_i s_i') / (1 - a)
    b = B^-1 (X'y - sum_i c_i s_i t_i) / (1 - a)
    U_i = X_i' R_i^-1 e_i = (X_i'e_i - c_i s_i E_i) / (1 - a)
    Cov(b) = B^-1 (sum_i U_i U_i') B^-1                  (robust "sandwich", no small-sample factor)

Iteration: b from OLS, then (phi, a) from the residuals and b by generalised least squares,
until b changes by less than 1e-12 (relative). Clusters are the distinct values of the cluster
column (rows need not be sorted; geepack needs rows sorted by cluster).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noim.stats._base import StatsInputError
from noim.stats.design import FloatArray, IntArray, cluster_sums


@dataclass(frozen=True)
class GeeFit:
    params: FloatArray
    cov: FloatArray
    alpha: float  # exchangeable working correlation
    scale: float  # phi
    iterations: int


def fit_gee_exchangeable(
    y: FloatArray,
    X: FloatArray,
    codes: IntArray,
    n_clusters: int,
    where: str,
    *,
    tol: float = 1e-12,
    max_iter: int = 200,
) -> GeeFit:
    """Exchangeable GEE for the identity link (see the module docstring)."""
    if n_clusters < 2:
        raise StatsInputError(
            f"{where}: method 'gee' got {n_clusters} cluster(s); expected at least 2 "
            "(the sandwich variance needs several clusters)"
        )
    n = len(y)
    ni = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    S = cluster_sums(X, codes, n_clusters)
    t = cluster_sums(y, codes, n_clusters)
    XtX = X.T @ X
    Xty = X.T @ y
    n_pairs = float((ni * (ni - 1)).sum() / 2)
    b = np.linalg.solve(XtX, Xty)
    alpha = 0.0
    phi = 1.0
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (iterations reported)
        e = y - X @ b
        E = cluster_sums(e, codes, n_clusters)
        ssr = float(e @ e)
        phi = ssr / n
        if phi <= 1e-28 * max(float(y @ y) / n, 1.0):
            raise StatsInputError(
                f"{where}: method 'gee': the outcome is fitted exactly by arm and covariates "
                "(zero residual variance); expected residual variation"
            )
        if n_pairs > 0:
            alpha = float(((E * E).sum() - ssr) / 2 / (phi * n_pairs))
        if not (1 + (ni.max() - 1) * alpha > 0 and alpha < 1):
            raise StatsInputError(
                f"{where}: method 'gee': the exchangeable correlation estimate {alpha:.4g} "
                "is outside the range that gives a positive definite working correlation; "
                "expected a correlation in (-1/(max cluster size - 1), 1)"
            )
        c = alpha / (1 + (ni - 1) * alpha)
        Sc = S * c[:, None]
        B = XtX - Sc.T @ S
        b_new = np.asarray(np.linalg.solve(B, Xty - Sc.T @ t), dtype=np.float64)
        done = np.max(np.abs(b_new - b)) <= tol * (1 + np.max(np.abs(b_new)))
        b = b_new
        if done:
            break
    else:
        raise StatsInputError(
            f"{where}: method 'gee' did not converge in {max_iter} iterations; expected "
            "convergence (check the data for extreme values)"
        )
    e = y - X @ b
    E = cluster_sums(e, codes, n_clusters)
    ssr = float(e @ e)
    phi = ssr / n
    if n_pairs > 0:
        alpha = float(((E * E).sum() - ssr) / 2 / (phi * n_pairs))
    c = alpha / (1 + (ni - 1) * alpha)
    bread = (XtX - (S * c[:, None]).T @ S) / (1 - alpha)
    U = (cluster_sums(X * e[:, None], codes, n_clusters) - S * (c * E)[:, None]) / (1 - alpha)
    inv = np.linalg.inv(bread)
    cov = inv @ (U.T @ U) @ inv
    return GeeFit(params=b, cov=cov, alpha=alpha, scale=phi, iterations=iterations)
