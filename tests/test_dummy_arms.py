"""Dummy arms (noim.extract.dummy): constant per family, balanced, seeded, and independent of
the allocation, tested as an attacker would try to make them carry it.

The scripts and the interim report on dummy arms are tested in test_analysis_scripts.py and
test_reports.py (a blinded run never fetches an arm and names none; the real arms replace
the dummy ones for unblinded roles with no change of code).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from noim.extract import dummy


def families(n_gla: int, n_cro: int, children: int = 2) -> pd.DataFrame:
    """One row per child: families G-0001 ... and C-0001 ..., ``children`` each."""
    rows = []
    for site, prefix, n in (("GLA", "G", n_gla), ("CRO", "C", n_cro)):
        for i in range(1, n + 1):
            family = f"{prefix}-{i:04d}"
            for c in range(1, children + 1):
                rows.append({"child_id": f"{family}-{c}", "family_id": family, "site": site})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("n_gla", "n_cro"), [(10, 10), (7, 6), (1, 0), (33, 18)])
def test_balanced_overall_and_within_site(n_gla: int, n_cro: int) -> None:
    kids = families(n_gla, n_cro)
    for seed in range(20):
        coding = dummy.coding(kids, seed)
        assert set(coding) == set(kids["family_id"])
        assert set(coding.values()) <= set(dummy.DUMMY_ARMS)
        arms = pd.Series(coding)
        counts = arms.value_counts()
        assert abs(counts.get("DUMMY-A", 0) - counts.get("DUMMY-B", 0)) <= 1
        for prefix in ("G", "C"):
            part = arms[arms.index.str.startswith(prefix)].value_counts()
            assert abs(part.get("DUMMY-A", 0) - part.get("DUMMY-B", 0)) <= 1


def test_constant_per_family_and_reproducible() -> None:
    kids = families(12, 9, children=3)
    coding = dummy.coding(kids, 7)
    out = dummy.apply(kids.assign(arm="MASKEDXX", arm_masked=True), coding)
    assert (out.groupby("family_id")["arm"].nunique() == 1).all()
    assert out["arm"].map(lambda a: a in dummy.DUMMY_ARMS).all()
    # the same families and seed, in any row order, give the same coding
    shuffled = kids.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert dummy.coding(shuffled, 7) == coding
    assert dummy.coding(kids, 8) != coding  # another seed, another coding
    # the coding never reads an arm column: whatever the arms say, the same coding
    assert dummy.coding(kids.assign(arm="NIM"), 7) == dummy.coding(kids.assign(arm="SAU"), 7)


def test_apply_replaces_every_arm_and_refuses_unknown_families() -> None:
    kids = families(4, 4).assign(arm="NIM")
    coding = dummy.coding(kids, 1)
    out = dummy.apply(kids, coding)
    assert "NIM" not in set(out["arm"]) and str(out["arm"].dtype) == "string"
    assert kids["arm"].eq("NIM").all()  # the input is not changed
    with pytest.raises(dummy.DummyArmsError, match="G-0099"):
        dummy.apply(pd.DataFrame({"family_id": ["G-0099"], "arm": ["x"]}), coding)
    no_arm = pd.DataFrame({"family_id": ["G-0099"]})
    assert dummy.apply(no_arm, coding) is no_arm


def test_label_table_marks_every_row() -> None:
    table = pd.DataFrame({"arm": ["DUMMY-A", "DUMMY-B"], "n": [3, 4]})
    labelled = dummy.label_table(table)
    assert list(labelled.columns) == ["arm_coding", "arm", "n"]
    assert (labelled["arm_coding"] == "DUMMY ARMS: not the allocation").all()
    assert list(dummy.label_table(labelled).columns) == ["arm_coding", "arm", "n"]


def _agreement(coding: dict[str, str], real: dict[str, str]) -> float:
    """Share of families whose dummy arm is the real arm under the pairing A=first, B=second."""
    same = sum((coding[f] == "DUMMY-A") == (real[f] == "first") for f in real)
    return same / len(real)


@pytest.mark.parametrize("order", ["trial_id", "masked_code"])
def test_dummy_arms_carry_no_allocation_whatever_the_order(order: str) -> None:
    """An attacker's worst case: the real allocation alternates in the order of the family
    trial IDs (permuted blocks of two in registration order), or in the order of the masked
    codes.  A coding made by labelling families in either order would agree with the
    allocation for every family (or none).  Over 400 seeds the agreement of the dummy coding
    is that of an independent balanced labelling: mean 1/2, spread as the hypergeometric
    distribution, never all or nothing."""
    kids = families(20, 20, children=1)
    fams = kids.drop_duplicates("family_id")
    if order == "trial_id":
        ordered = fams.sort_values("family_id")["family_id"].tolist()
    else:  # an HMAC-like code per family, as the masked codes
        code = {f: hashlib.sha256(f"k:{f}".encode()).hexdigest()[:8] for f in fams["family_id"]}
        ordered = sorted(code, key=code.__getitem__)
    real = {f: ("first" if i % 2 == 0 else "second") for i, f in enumerate(ordered)}
    shares = np.array([_agreement(dummy.coding(kids, seed), real) for seed in range(400)])
    assert 0.46 < shares.mean() < 0.54
    assert shares.min() > 0.0 and shares.max() < 1.0
    # the spread of an independent labelling of 40 families: 20 "first", 20 dummy A (within
    # site the dummy is balanced, so this is approximately hypergeometric): sd of the
    # agreement about 2 * sd(hypergeometric) / 40
    sd = 2 * float(sps.hypergeom(40, 20, 20).std()) / 40
    assert 0.6 * sd < shares.std() < 1.5 * sd
    # and the dummy coding of the first seed is not the allocation relabelled
    assert 0.0 < _agreement(dummy.coding(kids, 0), real) < 1.0
