"""Loading the user's copy of the released ``WorldValuesBench/`` folder (nothing is bundled)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from evals.worldvaluesbench.spec import WorldValuesSpec

METADATA = "question_metadata.json"
SAMPLES = "probe/samples.tsv"
DEMOGRAPHICS = "full/full_demographic_qa.tsv"
VALUES = "full/full_value_qa.tsv"
GROUP_COLUMNS = ("Continent", "Urban / Rural", "Education")


@dataclass(frozen=True)
class Item:
    """One probe row: a participant's demographics and their answer to one value question."""

    index: int
    question_id: str
    participant: str
    group: str
    demographics: tuple[tuple[str, str], ...]
    question: str
    scale: tuple[int, int]
    human: int


def data_files(root: Path) -> dict[str, Path]:
    """The four released files under ``root`` (a clear error names any missing one)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(
            f"{root}: WorldValuesBench data must be the released WorldValuesBench/ folder "
            f"(holding {METADATA}, {SAMPLES}, {DEMOGRAPHICS}, {VALUES})"
        )
    files = {name: root / name for name in (METADATA, SAMPLES, DEMOGRAPHICS, VALUES)}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        hint = f" (copy dataset_construction/{METADATA} there)" if METADATA in missing else ""
        raise ValueError(f"{root}: missing {', '.join(missing)}{hint}")
    return files


def _read_tsv(path: Path, wanted: set[str] | None = None) -> tuple[list[str], dict[str, dict]]:
    """(header, ``D_INTERVIEW -> row``), keeping only ``wanted`` participants when given."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        header = reader.fieldnames or []
        if "D_INTERVIEW" not in header:
            raise ValueError(f"{path}: no D_INTERVIEW column (is this a WorldValuesBench TSV?)")
        rows = {}
        for row in reader:
            key = _participant(row["D_INTERVIEW"])
            if wanted is None or key in wanted:
                rows[key] = row
    return header, rows


def _participant(value: str) -> str:
    """D_INTERVIEW as written by pandas may read '156070594' or '156070594.0'."""
    value = value.strip()
    return value[:-2] if value.endswith(".0") else value


def _answer(value: str, where: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: answer {value!r} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{where}: answer {value!r} is not an integer on the scale")
    return int(number)


def load(spec: WorldValuesSpec, root: Path) -> tuple[list[Item], dict[str, str]]:
    """Every probe row as an :class:`Item`, and ``{file: blake3}`` of the four files read."""
    from reprolm.hashing import hash_file

    files = data_files(root)
    metadata = json.loads(files[METADATA].read_text(encoding="utf-8"))
    with open(files[SAMPLES], encoding="utf-8", newline="") as handle:
        samples = list(csv.DictReader(handle, delimiter="\t"))
    needed = {"Question", "D_INTERVIEW", *GROUP_COLUMNS}
    if samples and not needed <= set(samples[0]):
        missing = sorted(needed - set(samples[0]))
        raise ValueError(f"{files[SAMPLES]}: missing column(s) {', '.join(missing)}")
    wanted = {_participant(row["D_INTERVIEW"]) for row in samples}
    dem_header, dem = _read_tsv(files[DEMOGRAPHICS], wanted)
    _, values = _read_tsv(files[VALUES], wanted)
    for column in spec.demographics:
        if column not in dem_header:
            raise ValueError(f"{files[DEMOGRAPHICS]}: no demographic column {column!r}")
        if column not in metadata:
            raise ValueError(f"{files[METADATA]}: no entry for demographic column {column!r}")
    items = []
    for index, row in enumerate(samples):
        where = f"{files[SAMPLES]}:{index + 2}"
        qid, pid = row["Question"], _participant(row["D_INTERVIEW"])
        if qid not in metadata:
            raise ValueError(f"{where}: question {qid!r} is not in {files[METADATA]}")
        for table, path in ((dem, files[DEMOGRAPHICS]), (values, files[VALUES])):
            if pid not in table:
                raise ValueError(f"{where}: participant {pid} is not in {path}")
        if qid not in values[pid]:
            raise ValueError(f"{files[VALUES]}: no column for value question {qid!r}")
        meta = metadata[qid]
        lo, hi = int(meta["answer_scale_min"]), int(meta["answer_scale_max"])
        human = _answer(values[pid][qid], f"{files[VALUES]}: participant {pid}, {qid}")
        if not lo <= human <= hi:
            raise ValueError(
                f"{files[VALUES]}: participant {pid}, {qid}: answer {human} is outside the "
                f"scale {lo}..{hi} of {files[METADATA]}"
            )
        items.append(
            Item(
                index=index,
                question_id=qid,
                participant=pid,
                group=" | ".join(row[c] for c in GROUP_COLUMNS),
                demographics=tuple(
                    (metadata[c]["question"], dem[pid][c]) for c in spec.demographics
                ),
                question=meta["question"],
                scale=(lo, hi),
                human=human,
            )
        )
    digests = {name: hash_file(path) for name, path in sorted(files.items())}
    return items, digests
