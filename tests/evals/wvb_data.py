"""Generated WorldValuesBench data in the released file layout (the real survey answers may
not be redistributed): ``question_metadata.json``, ``probe/samples.tsv``,
``full/full_demographic_qa.tsv``, ``full/full_value_qa.tsv``. Question texts follow the
released metadata's style; every answer is random."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

DEMOGRAPHIC_QUESTIONS = {
    "B_COUNTRY": "In what country was the interview conducted?",
    "H_URBRURAL": "What is the type of settlement in which the interview was conducted? "
    "Urban or Rural?",
    "Q275": "What is the highest educational level that you have attained?",
    "Q260": "What is your sex?",
}
VALUE_QUESTIONS = {  # id -> (text, min, max)
    "Q1": ("On a scale of 1 to 4, 1 meaning 'Very important' and 4 meaning 'Not at all "
           "important', how important is family in your life?", 1, 4),
    "Q57": ("On a scale of 1 to 2, 1 meaning 'Most people can be trusted' and 2 meaning 'Need "
            "to be very careful', can most people be trusted?", 1, 2),
    "Q122": ("On a scale of 0 to 2, 0 meaning 'Disagree' and 2 meaning 'Agree', does "
             "immigration fill important job vacancies?", 0, 2),
}  # fmt: skip
CONTINENTS = {"Europe": ["Germany", "Greece"], "Asia": ["Japan", "India"]}
EDUCATION = {
    "Tertiary": "Bachelor or equivalent (ISCED 6)",
    "Lower Secondary": "Lower secondary education (ISCED 2)",
}


def write(root: Path, per_group: int = 2, seed: int = 0) -> Path:
    """Write the four files under ``root``; ``per_group`` participants per (question, group)."""
    rng = random.Random(seed)
    (root / "probe").mkdir(parents=True, exist_ok=True)
    (root / "full").mkdir(parents=True, exist_ok=True)
    metadata = {
        key: {"question": text, "category": "Demographic", "use_case": "demographic",
              "answer_scale_min": "", "answer_scale_max": "", "answer_data_type": "non_ordinal"}
        for key, text in DEMOGRAPHIC_QUESTIONS.items()
    }  # fmt: skip
    for key, (text, lo, hi) in VALUE_QUESTIONS.items():
        metadata[key] = {
            "question": text, "category": "Social Values", "use_case": "value",
            "answer_scale_min": lo, "answer_scale_max": hi, "answer_data_type": "ordinal",
        }  # fmt: skip
    (root / "question_metadata.json").write_text(json.dumps(metadata, indent=4))
    people, samples, pid = {}, [], 100070000
    for qid in VALUE_QUESTIONS:
        for continent, countries in CONTINENTS.items():
            for settlement in ("Urban", "Rural"):
                for level, education in EDUCATION.items():
                    for _ in range(per_group):
                        pid += 1
                        people[pid] = {
                            "B_COUNTRY": rng.choice(countries),
                            "H_URBRURAL": settlement,
                            "Q275": education,
                            "Q260": rng.choice(["Male", "Female"]),
                        }
                        samples.append([qid, "Social Values", continent, settlement, level, pid])
    _tsv(root / "probe" / "samples.tsv",
         ["Question", "Question Category", "Continent", "Urban / Rural", "Education",
          "D_INTERVIEW"], samples)  # fmt: skip
    _tsv(root / "full" / "full_demographic_qa.tsv", ["D_INTERVIEW", *DEMOGRAPHIC_QUESTIONS],
         [[p, *d.values()] for p, d in people.items()])  # fmt: skip
    # pandas writes a column holding missing values as floats ("3.0"): mimic that for Q1.
    values = [
        [p, *(f"{rng.randint(lo, hi)}.0" if q == "Q1" else rng.randint(lo, hi)
              for q, (_, lo, hi) in VALUE_QUESTIONS.items())]
        for p in people
    ]  # fmt: skip
    _tsv(root / "full" / "full_value_qa.tsv", ["D_INTERVIEW", *VALUE_QUESTIONS], values)
    return root


def _tsv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
