"""Dummy arms: a seeded two-arm coding of the families for blinded analysis code.

A blinded statistician writes and tests the analysis before unblinding on a *dummy
randomisation*: a fake two-arm coding, clearly labelled, that the real arms replace at
unblinding (DOMAIN.md, "Blinding in practice").  The analysis scripts and the interim
report apply it to every dataset a blinded reader extracts (masked codes in ``arm``), so
the same code runs end to end on two arms; roles that may see arms get the allocated arms
through the same code, with nothing changed.

The coding is a function of the families' trial IDs, their sites and a seed, and of nothing
else: it is computed from what a blinded reader already holds and never from the arm, the
masked code, the allocation's sequence or its time.  Families are taken in trial-ID order
within each site and shuffled by a generator seeded with the seed; the shuffled list (site
by site) is then labelled A, B, A, B ...  from a random start.  So:

* every child of a family gets its family's dummy arm (constant per family);
* the dummy arms are balanced in families, overall and within each site (the counts differ
  by at most one);
* the labelling is uniformly random given the families, whatever their order: it is
  independent of the allocation (it agrees with it for about half of the families, whatever
  the sequence: tested against an allocation that alternates in trial-ID order);
* the same families and seed give the same coding; another family joining may change it.

Every output made with it carries :data:`DUMMY_LABEL`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from noim.domain.exceptions import NoimError

__all__ = [
    "DEFAULT_SEED",
    "DIRECTION",
    "DUMMY_ARMS",
    "DUMMY_LABEL",
    "LABEL_COLUMN",
    "DummyArmsError",
    "apply",
    "coding",
    "describe",
    "label_table",
]

#: the label every output made on dummy arms carries
DUMMY_LABEL = "DUMMY ARMS: not the allocation"
#: the two dummy arm levels; the first plays the reference (control) arm
DUMMY_ARMS = ("DUMMY-A", "DUMMY-B")
#: the sentence tables of effects carry on dummy arms, in the place of the direction note
DIRECTION = (
    f"{DUMMY_LABEL}: effects are {DUMMY_ARMS[1]} minus {DUMMY_ARMS[0]} ({DUMMY_ARMS[0]} in the "
    f"place of the control arm), ratios {DUMMY_ARMS[1]} over {DUMMY_ARMS[0]}; neither is an arm."
)
#: the column every table made on dummy arms starts with (its value: ``DUMMY_LABEL``)
LABEL_COLUMN = "arm_coding"
#: the dummy coding's seed unless the caller gives one
DEFAULT_SEED = 20260401
#: mixed into the seed, so the dummy coding's stream differs from any other use of the seed
_STREAM = 0x44554D4D59  # "DUMMY"


class DummyArmsError(NoimError):
    """The dummy coding cannot be applied as asked (a family it does not know)."""


def coding(families: pd.DataFrame, seed: int = DEFAULT_SEED) -> dict[str, str]:
    """Each family's dummy arm: ``{family_id: "DUMMY-A" | "DUMMY-B"}``.

    ``families`` holds ``family_id`` and ``site`` (one row per child or per family; any
    other column is ignored, so an ``arm`` column can never enter the coding).
    """
    fams = (
        pd.DataFrame(
            {
                "family_id": families["family_id"].astype(str).to_numpy(),
                "site": families["site"].astype(str).to_numpy(),
            }
        )
        .drop_duplicates("family_id")
        .sort_values(["site", "family_id"], kind="stable")
    )
    rng = np.random.default_rng([int(seed), _STREAM])
    shuffled: list[str] = []
    for _site, part in fams.groupby("site", sort=True):
        ids = part["family_id"].to_numpy()
        shuffled += [str(ids[i]) for i in rng.permutation(len(ids))]
    start = int(rng.integers(2))
    return {fid: DUMMY_ARMS[(start + i) % 2] for i, fid in enumerate(shuffled)}


def apply(df: pd.DataFrame, dummy: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with its ``arm`` column replaced by each row's family's dummy arm (the
    input's arm values are dropped, whatever they were).  A frame without ``arm`` is
    returned as it is; a family the coding does not hold is refused."""
    if "arm" not in df.columns:
        return df
    fams = df["family_id"].astype(str)
    unknown = sorted(set(fams) - set(dummy))
    if unknown:
        raise DummyArmsError(
            f"dummy arms: families {', '.join(unknown[:5])} are not in the dummy coding; "
            "expected a coding made from the children dataset of the same extraction"
        )
    arms = pd.Series([dummy[f] for f in fams], index=df.index, dtype="string")
    return df.assign(arm=arms)


def label_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a first column ``arm_coding`` = ``DUMMY_LABEL`` on every row, so that a
    table (or any row copied out of it) made on dummy arms says so."""
    out = df.copy()
    if LABEL_COLUMN in out.columns:
        out = out.drop(columns=[LABEL_COLUMN])
    out.insert(0, LABEL_COLUMN, pd.Series([DUMMY_LABEL] * len(out), index=out.index, dtype=object))
    return out


def describe(seed: int) -> str:
    """One sentence for a report's head: what the dummy coding is and its seed."""
    return (
        f"{DUMMY_LABEL}. The groups {DUMMY_ARMS[0]} and {DUMMY_ARMS[1]} are a seeded dummy "
        f"coding of the families (seed {seed}; balanced within site, constant per family, "
        "independent of the allocation), for testing analysis code while blinded: they are "
        "not the allocated arms and no result here is a treatment effect."
    )
