"""Record the README's tour of the command line with real output.

Builds the demonstration trial in a scratch folder (exactly what ``make demo`` does), runs
the tour's commands on it as the demo users, and writes each command with its output into
the fenced block that follows the matching ``<!-- tour:NAME -->`` marker in README.md::

    .venv/bin/python scripts/readme_tour.py            # rewrite README.md in place
    .venv/bin/python scripts/readme_tour.py --print    # print the blocks instead

Steps marked ``show=False`` run but are not shown (they look up IDs the tour needs).
The tour does not change ``demo/``: it works on its own copy.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOIM = str(Path(sys.executable).with_name("noim"))
DB = "sqlite:///demo/noim.db"


@dataclass
class Step:
    cmd: str  # as shown in the README, with {placeholders}
    user: str | None = None
    keep: int | None = None  # show at most this many output lines, then "..."
    capture: dict[str, str] = field(default_factory=dict)  # name -> regex with one group
    show: bool = True
    shown_as: str | None = None  # a different command line to show (make demo)
    columns: int = 100  # terminal width the tables are drawn for


SDQ_ITEMS = [2, 1, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 0, 2, 1, 1, 0, 1, 2, 1, 1, 0, 2, 1]


def _files(work: Path, v: dict[str, str]) -> None:
    rows = ["child_id,timepoint,instrument,form,respondent,date,item,value,missing_reason"]
    rows += [
        f"{v['child1']},baseline,sdq,2-4,carer,2026-11-20,{i},{x},"
        for i, x in enumerate(SDQ_ITEMS, 1)
    ]
    (work / "sdq.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    bad = [
        "# noim-import: dates=dmy",
        "child_id,timepoint,instrument,form,respondent,date,item,value,missing_reason",
        f"{v['child2']},baseline,sdq,2-4,carer,31/11/2026,1,1,",
        f"{v['child2']},15m,sdq,2-4,carer,20/11/2026,1,1,",
        f"{v['child2'][:-1]}X,baseline,sdq,2-4,carer,20/11/2026,4,7,",
    ]
    (work / "bad.csv").write_text("\n".join(bad) + "\n", encoding="utf-8")


def tour() -> list[tuple[str, list[Step]]]:
    gla = "NOIM_USER=coord_gla "
    return [
        ("demo", [Step("noim demo --database " + DB, shown_as="make demo")]),
        (
            "register",
            [
                Step("export NOIM_DATABASE_URL=" + DB),
                Step(
                    gla + "noim screening add --site GLA --la GCC --on 2026-10-12 --children 2 "
                    "--eligible --reference GCC/2026/114",
                    capture={"entry": r"entry (\d+)"},
                ),
                Step(
                    gla + "noim family register --site GLA --la GCC",
                    capture={"fam": r"family (\S+)"},
                ),
                Step(gla + "noim screening enrol {entry} {fam}"),
                Step(
                    gla + "noim child add {fam} --dob 2024-03-14 --sex female "
                    "--entered-care 2026-10-05 --legal-route sc.cpo",
                    capture={"child1": r"child (\S+)"},
                ),
                Step(
                    gla + "noim child add {fam} --dob 2026-09-20 --sex male "
                    "--entered-care 2026-10-05 --legal-route sc.cpo",
                    capture={"child2": r"child (\S+)"},
                ),
            ],
        ),
        (
            "bad-child",
            [
                Step(
                    gla + "noim child add {fam} --dob 2026-10-20 --sex male "
                    "--entered-care 2026-10-05 --legal-route sc.cpo"
                )
            ],
        ),
        ("scope", [Step("NOIM_USER=coord_cro noim family show {fam}")]),
        (
            "correct",
            [
                Step(
                    gla + "noim child correct {child2} --dob 2026-09-02 "
                    '--reason "date of birth misread on the referral"'
                ),
                Step("NOIM_USER=admin noim audit show --table children --key {child2}"),
            ],
        ),
        (
            "randomise",
            [
                Step(gla + "noim randomise {fam}"),
                Step(gla + "noim child eligibility {child1} --eligible --on 2026-10-20"),
                Step(gla + "noim child eligibility {child2} --eligible --on 2026-10-20"),
                Step(
                    gla + "noim consent add {child1} --by local_authority "
                    "--form-version 3.1 --on 2026-10-21"
                ),
                Step(
                    gla + "noim consent add {child2} --by local_authority "
                    "--form-version 3.1 --on 2026-10-21"
                ),
                Step(gla + "noim randomise {fam}"),
                Step(gla + "noim randomise {fam}"),
                Step("NOIM_USER=research_gla noim family show {fam}", keep=14),
            ],
        ),
        ("simulate", [Step("noim randomisation simulate --families 400 --reps 1000")]),
        (
            "intervention",
            [
                Step(gla + "noim intervention record {fam} --received --started 2026-11-24"),
                Step(gla + "noim intervention record {fam} --not-received --reason declined"),
                Step("NOIM_USER=research_gla noim intervention show {fam}"),
            ],
        ),
        (
            "visits",
            [
                Step(gla + "noim visit list {child1}"),
                Step(gla + "noim followups due --site GLA", keep=12),
            ],
        ),
        (
            "placements",
            [
                Step(gla + "noim placement add {child1} --from 2026-10-05 --type foster"),
                Step(
                    gla + "noim placement move {child1} --on 2026-11-10 --type kinship "
                    "--reason planned_move"
                ),
                Step(gla + "noim placement add {child1} --from 2026-11-01 --type foster"),
            ],
        ),
        (
            "import",
            [
                Step(gla + "noim import assessments sdq.csv"),
                Step(gla + "noim import assessments sdq.csv"),
                Step(gla + "noim import assessments bad.csv"),
            ],
        ),
        (
            "queries",
            [
                Step(
                    "NOIM_USER=datamanager noim queries raise --table children --key {child1} "
                    "--field entered_care_on --message 'entry to care is the day the "
                    "proceedings began: please check the social work record'",
                    capture={"query": r"[Qq]uery (\d+)"},
                ),
                Step("NOIM_USER=datamanager noim queries list --site GLA", columns=160),
                Step(
                    gla + "noim queries respond {query} --message "
                    "'checked against the social work record: correct as entered'"
                ),
                Step("NOIM_USER=datamanager noim queries resolve {query} --message 'accepted'"),
                Step("NOIM_USER=datamanager noim check"),
            ],
        ),
        (
            "freeze",
            [
                Step(
                    "NOIM_USER=datamanager noim freeze create --label 'DMC interim 2'",
                    capture={"freeze": r"[Ff]reeze (\d+)"},
                ),
                Step("NOIM_USER=datamanager noim freeze list"),
                Step(
                    "NOIM_USER=datamanager noim report interim --open --freeze {freeze} "
                    "--out reports/open"
                ),
                Step(
                    "NOIM_USER=datamanager noim report interim --closed --freeze {freeze} "
                    "--out reports/closed"
                ),
                Step(
                    "NOIM_USER=unblinded_stat noim report interim --closed --freeze {freeze} "
                    "--out reports/closed"
                ),
                Step(
                    "NOIM_USER=statistician noim report interim --closed --dummy-arms "
                    "--freeze {freeze} --out reports/dummy"
                ),
                Step("NOIM_USER=statistician noim freeze verify {freeze}"),
            ],
        ),
        (
            "verify",
            [
                Step("NOIM_USER=datamanager noim audit verify"),
                Step("NOIM_USER=datamanager noim audit anchor --out anchor-2026-11.json"),
                Step(gla + "noim visit missed {child2} baseline --reason 'carer unwell'"),
                Step("NOIM_USER=datamanager noim audit verify --anchor anchor-2026-11.json"),
            ],
        ),
        (
            "blinding",
            [
                Step(
                    "NOIM_USER=datamanager noim audit show --table randomisation_state --key 1",
                    keep=6,
                    columns=160,
                ),
            ],
        ),
        (
            "identity",
            [
                Step(gla + "noim child identity {child1} --given-name Ava --family-name Morrison"),
                Step(gla + "noim child identity {child1} --family-name Morison"),
                Step(
                    gla + "noim child identity {child1} --family-name Morison "
                    "--reason 'spelling checked against the birth certificate'"
                ),
                Step(
                    gla + "noim child identity {child1} --erase "
                    "--reason 'erasure requested by the local authority (ref DP-2026-07)'"
                ),
                Step(
                    "NOIM_USER=admin noim audit show --table child_identities --key 1",
                    keep=8,
                    columns=160,
                ),
            ],
        ),
        (
            "admin",
            [
                Step("NOIM_USER=admin noim users add fiona --role coordinator --site GLA"),
                Step("NOIM_USER=admin noim db current"),
            ],
        ),
    ]


def _run(step: Step, work: Path, env: dict[str, str], v: dict[str, str]) -> str:
    line = step.cmd.format(**v)
    words = shlex.split(line)
    if words[0] == "export":
        name, _, value = words[1].partition("=")
        env[name] = value
        return ""
    run_env = {**env, "COLUMNS": str(step.columns)}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        run_env[name] = value
    assert words[0] == "noim", line
    proc = subprocess.run(
        [NOIM, *words[1:]],
        cwd=work,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    out = proc.stdout.rstrip("\n")
    for name, pattern in step.capture.items():
        m = re.search(pattern, out)
        if m is None:
            raise SystemExit(
                f"tour: {name!r} not found by {pattern!r} in the output of {line}:\n{out}"
            )
        v[name] = m.group(1)
    return out


def record() -> dict[str, str]:
    with tempfile.TemporaryDirectory(prefix="noim-tour-") as tmp:
        work = Path(tmp)
        _env = {k: val for k, val in os.environ.items() if not k.startswith("NOIM_")}
        env = {**_env, "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
        v: dict[str, str] = {}
        blocks: dict[str, str] = {}
        for name, steps in tour():
            text: list[str] = []
            for step in steps:
                if name == "import" and "sdq.csv" not in os.listdir(work):
                    _files(work, v)
                out = _run(step, work, env, v)
                if not step.show:
                    continue
                text.append("$ " + (step.shown_as or step.cmd.format(**v)))
                lines = out.splitlines()
                if step.keep is not None and len(lines) > step.keep:
                    lines = [*lines[: step.keep], "..."]
                text += lines
            blocks[name] = "\n".join(text)
        return blocks


def splice(readme: str, blocks: dict[str, str]) -> str:
    missing = [n for n in blocks if f"<!-- tour:{n} -->" not in readme]
    if missing:
        raise SystemExit(f"tour: README.md has no marker for {', '.join(missing)}")
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- tour:{re.escape(name)} -->\n```\n)(.*?)^```$", re.S | re.M)
        readme = pattern.sub(lambda m, b=body: m.group(1) + b + "\n```", readme, count=1)
    return readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the blocks, leave README.md")
    args = parser.parse_args()
    blocks = record()
    if args.print:
        print("\n\n".join(f"<!-- tour:{n} -->\n{b}" for n, b in blocks.items()))
        return
    path = ROOT / "README.md"
    path.write_text(splice(path.read_text(encoding="utf-8"), blocks), encoding="utf-8")
    print(f"README.md: {len(blocks)} tour blocks recorded")


if __name__ == "__main__":
    main()
