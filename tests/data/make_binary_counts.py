"""Generates tests/data/binary_clustered.csv and placement_moves.csv (fixed seed).

Run from the repository root: python tests/data/make_binary_counts.py
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261124)
G = 160
fam_size = rng.integers(1, 4, size=G)
fam = np.repeat(np.arange(1, G + 1), fam_size)
arm_f = np.where(rng.random(G) < 0.5, "control", "nim")
arm = arm_f[fam - 1]
n = len(fam)
u = rng.normal(0, 0.8, G)[fam - 1]
age = np.round(rng.uniform(0, 5, n), 2)
sex = np.where(rng.random(n) < 0.5, "female", "male")
lin = -0.4 + 0.6 * (arm == "nim") + 0.15 * (age - 2.5) + u
p = 1 / (1 + np.exp(-lin))
y = (rng.random(n) < p).astype(int)
pd.DataFrame({"family": fam, "arm": arm, "age": age, "sex": sex, "stable": y}).to_csv(
    "tests/data/binary_clustered.csv", index=False
)
days = rng.integers(60, 900, size=n)
mu = days / 365.25 * np.exp(0.2 - 0.35 * (arm == "nim") + 0.1 * (age - 2.5) + 0.5 * u)
theta = 2.0
lam = rng.gamma(theta, mu / theta)
moves = rng.poisson(lam)
pd.DataFrame(
    {"family": fam, "arm": arm, "age": age, "sex": sex, "days": days, "moves": moves}
).to_csv("tests/data/placement_moves.csv", index=False)
print(n, y.mean(), moves.mean())
