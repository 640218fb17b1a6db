"""Datasets stored in a data freeze: canonical encoding and reading back.

A freeze stores each dataset (the analysis datasets, the operational ones the reports read,
and ``allocations``, ``timepoints``, ``trial``) as an unblinded all-sites reader saw it
inside the freeze's one transaction (``noim.extract.snapshot``).  Reading one back applies what the live
extraction applies for the reader: the site scope (site-scoped roles keep their own sites'
rows) and blinding (blinded roles get each family's masked code, stored with the freeze
in the ``allocations`` dataset, and no arm label).  See docs/data-freezes.md.

The encoding (``json-columns+zlib``) is canonical: column names and dtypes in order, then
the values column by column as JSON (strings, integers, floats in Python's shortest
round-trip form, booleans, ISO dates, ``null`` for missing), sorted keys, no spaces,
UTF-8; zlib-compressed (level 9) for storage.  ``sha256`` is over the uncompressed text,
so it depends on the data only.

Every read goes through :func:`load`, which hashes the text it decompresses and refuses a
freeze that fails ``noim.db.freeze_verify.check`` (``FreezeTampered``, naming the freeze and
the dataset): the datasets read against their recorded hashes, and the hash over all the
freeze's datasets against the freeze row and the audit row that recorded its creation.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, null, select

from noim.db import freeze_verify
from noim.db.freeze_verify import FORMAT, content_hash
from noim.db.models import DataFreezeDataset
from noim.db.session import Database
from noim.domain.exceptions import NotFound
from noim.domain.roles import Actor, Capability
from noim.extract._columns import _cast

__all__ = ["FORMAT", "content_hash", "decode", "encode", "for_reader", "load", "read"]

#: datasets whose rows, not only their arm column, differ for a blinded reader: a freeze
#: also stores them as a blinded reader sees them (``costs``: without the services that
#: reveal the arm), and blinded roles read that variant
BLINDED_VARIANTS = {"costs": "costs_blinded"}


def _values(series: pd.Series, dtype: str) -> list[Any]:
    if dtype == "datetime64[ns]":
        days = series.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
        return [None if np.isnat(d) else str(d) for d in days]
    if dtype == "float64":
        return [None if math.isnan(v) else float(v) for v in series.to_numpy(dtype=float)]
    if dtype in ("int64",):
        return [int(v) for v in series.to_numpy()]
    if dtype == "bool":
        return [bool(v) for v in series.to_numpy()]
    out: list[Any] = []
    for v in series.astype(object).tolist():
        if v is None or v is pd.NA:
            out.append(None)
        elif dtype in ("Int64",):
            out.append(int(v))
        elif dtype == "boolean":
            out.append(bool(v))
        else:
            out.append(str(v))
    return out


def encode(df: pd.DataFrame, salt: str | None = None) -> tuple[bytes, str, int]:
    """The dataset's canonical text (compressed), its SHA-256 (after the freeze's ``salt``)
    and its number of rows."""
    columns = [[str(name), str(df[name].dtype)] for name in df.columns]
    data = [_values(df[name], dtype) for name, dtype in columns]
    text = json.dumps(
        {"columns": columns, "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")
    return zlib.compress(text, 9), freeze_verify.text_sha256(text, salt), len(df)


def decode(content: bytes, fmt: str = FORMAT) -> pd.DataFrame:
    """The DataFrame ``encode`` stored (same columns, order and dtypes)."""
    return _from_text(freeze_verify.unpack(content, fmt))


def _from_text(text: bytes) -> pd.DataFrame:
    obj = json.loads(text.decode("utf-8"))
    out = pd.DataFrame(
        {
            name: _cast(values, dtype)
            for (name, dtype), values in zip(obj["columns"], obj["data"], strict=True)
        }
    )
    out.index = pd.RangeIndex(len(out))
    return out


def load(db: Database, actor: Actor, freeze_id: int, names: list[str]) -> dict[str, pd.DataFrame]:
    """The stored datasets ``names`` of freeze ``freeze_id`` as stored (unblinded: internal),
    after checking them (``FreezeTampered`` when the freeze fails: nothing is returned)."""
    d = DataFreezeDataset
    with db.read(actor) as s:
        conn = s.connection()
        rec = freeze_verify.recorded(conn, [freeze_id]).get(freeze_id)
        if rec is None:
            raise NotFound(f"data freeze {freeze_id}: no such freeze (see `noim freeze list`)")
        rows = conn.execute(
            select(d.name, d.format, case((d.name.in_(names), d.content), else_=null())).where(
                d.freeze_id == freeze_id
            )
        ).all()
    texts: dict[str, bytes] = {}
    hashed: dict[str, str | None] = {}
    for name, fmt, content in rows:
        if content is None:
            continue
        try:
            texts[name] = freeze_verify.unpack(bytes(content), fmt)
            hashed[name] = freeze_verify.text_sha256(texts[name], rec.salt)
        except ValueError:
            hashed[name] = None
    freeze_verify.check(rec, hashed).raise_if_failed()
    missing = [n for n in names if n not in texts]
    if missing:
        raise NotFound(
            f"data freeze {freeze_id}: holds no dataset {', '.join(missing)} (made by an "
            "earlier version of noim); make a new freeze (`noim freeze create`) to read them"
        )
    return {name: _from_text(texts[name]) for name in names}


def for_reader(df: pd.DataFrame, actor: Actor, allocations: pd.DataFrame) -> pd.DataFrame:
    """``df`` as ``actor`` may see it: own sites' rows only (datasets with a ``site``
    column; rows without a site are trial-wide and not a site's), arm masked for blinded
    roles (datasets with an ``arm`` column; the operational ones have none)."""
    if not actor.all_sites and "site" in df.columns:
        df = df[df["site"].isin(sorted(actor.site_codes)).fillna(False).astype(bool)]
    df = df.reset_index(drop=True)
    if "arm" in df.columns and not actor.can(Capability.SEE_ARM):
        masked = dict(zip(allocations["family_id"], allocations["masked_code"], strict=True))
        df = df.assign(
            arm=_cast([masked[f] for f in df["family_id"]], "string"),
            arm_masked=np.ones(len(df), dtype=bool),
        )
        if "arm_label" in df.columns:
            df = df.assign(arm_label=_cast([None] * len(df), "string"))
        if "intervention_started_on" in df.columns:  # as the live children extract
            df = df.assign(intervention_started_on=_cast([None] * len(df), "datetime64[ns]"))
    return df


def read(db: Database, actor: Actor, name: str, freeze_id: int) -> pd.DataFrame:
    """Dataset ``name`` of freeze ``freeze_id`` as ``actor`` may see it (for a blinded
    reader, its blinded variant where it has one: ``BLINDED_VARIANTS``)."""
    stored = name
    if not actor.can(Capability.SEE_ARM):
        stored = BLINDED_VARIANTS.get(name, name)
    got = load(db, actor, freeze_id, [stored, "allocations"])
    return for_reader(got[stored], actor, got["allocations"])


def read_scores(
    db: Database, actor: Actor, freeze_id: int, *, wide: bool, respondent: str
) -> pd.DataFrame:
    """The frozen scores, long or wide (other respondents widened from the frozen long form)."""
    if not wide:
        return read(db, actor, "scores", freeze_id)
    if respondent == "carer":
        return read(db, actor, "scores_wide", freeze_id)
    from noim.extract import widen  # the one widening the live extraction uses

    got = load(db, actor, freeze_id, ["scores", "children", "timepoints", "allocations"])
    kids = got["children"]
    kids = kids[kids["withdrawn_level"].fillna("") != "data"]
    keys = kids[["child_id", "family_id", "site", "arm", "arm_masked"]].reset_index(drop=True)
    table = widen(got["scores"], keys, list(got["timepoints"]["code"]), respondent)
    return for_reader(table, actor, got["allocations"])
