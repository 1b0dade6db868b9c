"""Loading the user's copy of the released ``WorldValuesBench/`` folder (nothing is bundled).

Two views of the release: the probe set (:func:`load`: ``probe/samples.tsv`` rows, answers from
``full/`` or, without it, the ``test/`` or ``valid/`` split TSVs) and a whole split
(:func:`load_split`: a ``train/``, ``valid/``, ``test/`` or ``full/`` folder's
``<split>_demographic_qa.tsv`` + ``<split>_value_qa.tsv``, every participant's answer to each
value question of ``probe/value_questions.json``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.worldvaluesbench.spec import WorldValuesSpec

METADATA = "question_metadata.json"
SAMPLES = "probe/samples.tsv"
DEMOGRAPHICS = "full/full_demographic_qa.tsv"
VALUES = "full/full_value_qa.tsv"
GROUP_COLUMNS = ("Continent", "Urban / Rural", "Education")
SPLITS = ("full", "test", "valid", "train")  # probe answers: the first pair present, in order
VALUE_QUESTIONS = "probe/value_questions.json"
CONTINENTS = (
    "probe/country2continent.csv",
    "../dataset_construction/probe_set_construction/country2continent.csv",
)
LEVELS = "probe/education2level.csv"


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


def split_files(root: Path, split: str) -> tuple[Path, Path]:
    """``<root>/<split>/<split>_demographic_qa.tsv`` and ``..._value_qa.tsv``."""
    folder = Path(root) / split
    return folder / f"{split}_demographic_qa.tsv", folder / f"{split}_value_qa.tsv"


def _root(root: Path) -> Path:
    """The ``WorldValuesBench/`` folder: ``root`` itself, or that folder of a checkout."""
    root = Path(root)
    inner = root / "WorldValuesBench"
    return inner if not (root / SAMPLES).is_file() and (inner / SAMPLES).is_file() else root


def _metadata(root: Path) -> Path:
    """``question_metadata.json`` of the folder, else the checkout's ``dataset_construction/``."""
    here, there = root / METADATA, root.parent / "dataset_construction" / METADATA
    return there if not here.is_file() and there.is_file() else here


def data_files(root: Path) -> dict[str, Path]:
    """The probe set's four files under ``root`` (a clear error names any missing one):
    metadata, ``probe/samples.tsv`` and the first split pair present in :data:`SPLITS`; the
    keys are the released names (``full/full_value_qa.tsv`` …)."""
    root = _root(root)
    if not root.is_dir():
        raise ValueError(
            f"{root}: WorldValuesBench data must be the released WorldValuesBench/ folder "
            f"(holding {METADATA}, {SAMPLES}, {DEMOGRAPHICS}, {VALUES})"
        )
    files = {METADATA: _metadata(root), SAMPLES: root / SAMPLES}
    pairs = [split_files(root, split) for split in SPLITS]
    dem, val = next(((d, v) for d, v in pairs if d.is_file() and v.is_file()), pairs[0])
    files[dem.relative_to(root).as_posix()] = dem
    files[val.relative_to(root).as_posix()] = val
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        hint = f" (copy dataset_construction/{METADATA} there)" if METADATA in missing else ""
        if DEMOGRAPHICS in missing or VALUES in missing:
            hint += " (or the test/ or valid/ split's two TSVs, which hold the probe participants)"
        raise ValueError(f"{root}: missing {', '.join(missing)}{hint}")
    return files


def _header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle, delimiter="\t"), [])


def _read_tsv(
    path: Path, wanted: set[str] | None = None, columns: set[str] | None = None
) -> tuple[list[str], dict[str, dict]]:
    """(header, ``D_INTERVIEW -> row``), keeping only ``wanted`` participants and (a whole
    split has ~93K rows x 240 columns) only ``columns`` of each row when given."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        header = reader.fieldnames or []
        if "D_INTERVIEW" not in header:
            raise ValueError(f"{path}: no D_INTERVIEW column (is this a WorldValuesBench TSV?)")
        rows = {}
        for row in reader:
            key = _participant(row["D_INTERVIEW"])
            if wanted is None or key in wanted:
                rows[key] = row if columns is None else {c: row.get(c) or "" for c in columns}
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
    """Every probe row as an :class:`Item`, and ``{file: blake3}`` of the four files read; a
    split folder (``WorldValuesBench/test`` …) is read whole instead (:func:`load_split`)."""
    from reprolm.hashing import hash_file

    if (Path(root) / f"{Path(root).name}_value_qa.tsv").is_file():
        return load_split(spec, root)

    files = data_files(root)
    dem_path, values_path = (path for name, path in files.items() if name.endswith("_qa.tsv"))
    metadata = json.loads(files[METADATA].read_text(encoding="utf-8"))
    with open(files[SAMPLES], encoding="utf-8", newline="") as handle:
        samples = list(csv.DictReader(handle, delimiter="\t"))
    needed = {"Question", "D_INTERVIEW", *GROUP_COLUMNS}
    if samples and not needed <= set(samples[0]):
        missing = sorted(needed - set(samples[0]))
        raise ValueError(f"{files[SAMPLES]}: missing column(s) {', '.join(missing)}")
    wanted = {_participant(row["D_INTERVIEW"]) for row in samples}
    dem_header, dem = _read_tsv(dem_path, wanted)
    _, values = _read_tsv(values_path, wanted)
    for column in spec.demographics:
        if column not in dem_header:
            raise ValueError(f"{dem_path}: no demographic column {column!r}")
        if column not in metadata:
            raise ValueError(f"{files[METADATA]}: no entry for demographic column {column!r}")
    items = []
    for index, row in enumerate(samples):
        where = f"{files[SAMPLES]}:{index + 2}"
        qid, pid = row["Question"], _participant(row["D_INTERVIEW"])
        if qid not in metadata:
            raise ValueError(f"{where}: question {qid!r} is not in {files[METADATA]}")
        for table, path in ((dem, dem_path), (values, values_path)):
            if pid not in table:
                raise ValueError(f"{where}: participant {pid} is not in {path}")
        if qid not in values[pid]:
            raise ValueError(f"{values_path}: no column for value question {qid!r}")
        meta = metadata[qid]
        lo, hi = int(meta["answer_scale_min"]), int(meta["answer_scale_max"])
        human = _answer(values[pid][qid], f"{values_path}: participant {pid}, {qid}")
        if not lo <= human <= hi:
            raise ValueError(
                f"{values_path}: participant {pid}, {qid}: answer {human} is outside the "
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


def _mapping(path: Path, key: str, value: str) -> dict[str, str]:
    """``key -> value`` of a two-column CSV of the release (``Country`` -> ``Continent`` …)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not {key, value} <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: needs columns {key} and {value}")
        return {row[key]: row[value] for row in reader}


def _group_of(root: Path) -> tuple[Any, list[Path]]:
    """The probe's grouping (continent | urban/rural | education level) from the release's
    mapping CSVs when present (a value they do not map stays as it is), else the raw
    ``B_COUNTRY | H_URBRURAL | Q275`` answers; and the mapping files read."""
    continents = next((root / c for c in CONTINENTS if (root / c).is_file()), None)
    levels = root / LEVELS if (root / LEVELS).is_file() else None
    country = _mapping(continents, "Country", "Continent") if continents else {}
    level = _mapping(levels, "Education", "Level") if levels else {}

    def group(row: dict[str, str]) -> str:
        answers = [row.get("B_COUNTRY", ""), row.get("H_URBRURAL", ""), row.get("Q275", "")]
        return " | ".join([country.get(answers[0], answers[0]), answers[1],
                           level.get(answers[2], answers[2])])  # fmt: skip

    return group, [p for p in (continents, levels) if p is not None]


def load_split(
    spec: WorldValuesSpec, folder: Path, questions: list[str] | None = None
) -> tuple[list[Item], dict[str, str]]:
    """Every (value question, participant) of a released split folder (``train/``, ``valid/``,
    ``test/`` or ``full/`` of ``WorldValuesBench/``) with an answer, question-major as
    ``probe/samples.tsv``; blank answers (missing in the survey) are skipped. ``questions``
    defaults to ``probe/value_questions.json``'s (the paper's 36), else every value question of
    the metadata the value TSV has. Returns the items and ``{file: blake3}`` of what was read."""
    from reprolm.hashing import hash_file

    folder = Path(folder)
    root, split = folder.parent, folder.name
    dem_path, values_path = split_files(root, split)
    meta_path = _metadata(root)
    missing = [p for p in (dem_path, values_path, meta_path) if not p.is_file()]
    if missing:
        raise ValueError(
            f"{folder}: a WorldValuesBench split folder needs {dem_path.name} and "
            f"{values_path.name}, and {METADATA} beside it (missing: "
            f"{', '.join(str(p) for p in missing)})"
        )
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    dem_header, values_header = _header(dem_path), _header(values_path)
    read = [meta_path, dem_path, values_path]
    if questions is None and (root / VALUE_QUESTIONS).is_file():
        questions = list(json.loads((root / VALUE_QUESTIONS).read_text(encoding="utf-8")))
        read.append(root / VALUE_QUESTIONS)
    if questions is None:
        questions = [q for q in values_header if metadata.get(q, {}).get("use_case") == "value"]
    for qid in questions:
        if qid not in values_header:
            raise ValueError(f"{values_path}: no column for value question {qid!r}")
        if qid not in metadata or metadata[qid].get("answer_scale_min") in (None, ""):
            raise ValueError(f"{meta_path}: no ordinal scale for value question {qid!r}")
    for column in spec.demographics:
        if column not in dem_header:
            raise ValueError(f"{dem_path}: no demographic column {column!r}")
    group, mappings = _group_of(root)
    read += mappings
    _, dem = _read_tsv(dem_path, columns={*spec.demographics, "B_COUNTRY", "H_URBRURAL", "Q275"})
    _, values = _read_tsv(values_path, columns=set(questions))
    items = []
    for qid in questions:
        meta = metadata[qid]
        lo, hi = int(meta["answer_scale_min"]), int(meta["answer_scale_max"])
        for pid, row in values.items():
            if not row[qid].strip():
                continue
            if pid not in dem:
                raise ValueError(f"{dem_path}: no row for participant {pid} of {values_path}")
            human = _answer(row[qid], f"{values_path}: participant {pid}, {qid}")
            if not lo <= human <= hi:
                raise ValueError(
                    f"{values_path}: participant {pid}, {qid}: answer {human} is outside the "
                    f"scale {lo}..{hi} of {meta_path}"
                )
            items.append(
                Item(
                    index=len(items),
                    question_id=qid,
                    participant=pid,
                    group=group(dem[pid]),
                    demographics=tuple(
                        (metadata[c]["question"], dem[pid][c]) for c in spec.demographics
                    ),
                    question=meta["question"],
                    scale=(lo, hi),
                    human=human,
                )
            )
    if not items:
        raise ValueError(f"{values_path}: no answers to {', '.join(questions)}")
    digests = {p.relative_to(root).as_posix() if p.is_relative_to(root) else p.name:
               hash_file(p) for p in read}  # fmt: skip
    return items, dict(sorted(digests.items()))
