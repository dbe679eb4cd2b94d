"""One labelled crystal of a tensor dataset, and a list of them with its curation report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TensorRecord:
    """A crystal and its tensor label.

    Attributes:
        material_id: identifier in the source (e.g. "mp-149", "JVASP-1002").
        structure: pymatgen Structure; the label is expressed in its Cartesian frame.
        tensor: full Cartesian label, float64, shape (3,)*order, symmetrized so that the
            point group's forced zeros are exactly 0.0 and forced equalities exact.
        split: "train", "val", "test", or None when the source defines no split.
        task: tensor type name.
        spacegroup_number: international number at the curation symprec.
        crystal_system: crystal system at the curation symprec.
        parts: {part type name: full Cartesian label} for a task whose tensor is a sum of parts
            (``TensorType.parts``; the dielectric tensor: "dielectric_electronic" and
            "dielectric_ionic"), each symmetrized like ``tensor``, which is their sum. None where
            the source does not give the parts, or they failed curation.
    """

    material_id: str
    structure: object
    tensor: np.ndarray
    split: str | None
    task: str
    spacegroup_number: int = 0
    crystal_system: str = ""
    parts: dict[str, np.ndarray] | None = None

    def to_dict(self) -> dict:
        parts = None if self.parts is None else {k: np.asarray(v, dtype=float).tolist() for k, v in self.parts.items()}
        return {
            "material_id": self.material_id,
            "structure": self.structure.as_dict(),
            "tensor": np.asarray(self.tensor, dtype=float).tolist(),
            "split": self.split,
            "task": self.task,
            "spacegroup_number": self.spacegroup_number,
            "crystal_system": self.crystal_system,
            "parts": parts,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TensorRecord":
        from pymatgen.core import Structure

        return cls(
            material_id=d["material_id"],
            structure=Structure.from_dict(d["structure"]),
            tensor=np.asarray(d["tensor"], dtype=np.float64),
            split=d.get("split"),
            task=d["task"],
            spacegroup_number=int(d.get("spacegroup_number", 0)),
            crystal_system=d.get("crystal_system", ""),
            parts=None if d.get("parts") is None else {k: np.asarray(v, dtype=np.float64) for k, v in d["parts"].items()},
        )


class TensorDataset(list):
    """A list of TensorRecord with the task, source and the curation report that produced it."""

    def __init__(self, records=(), task: str = "", source: str = "", report=None):
        super().__init__(records)
        self.task = task
        self.source = source
        self.report = report

    def __getitem__(self, item):
        if isinstance(item, slice):
            return TensorDataset(super().__getitem__(item), self.task, self.source, self.report)
        return super().__getitem__(item)

    def split(self, name: str) -> "TensorDataset":
        """The records of one split ("train", "val" or "test")."""
        return TensorDataset([r for r in self if r.split == name], self.task, self.source, self.report)

    def tensors(self) -> np.ndarray:
        """Stacked labels, shape (N, 3, ..., 3)."""
        return np.stack([r.tensor for r in self]) if len(self) else np.zeros((0,))

    @classmethod
    def concatenate(cls, datasets: list["TensorDataset"], source: str) -> "TensorDataset":
        """The records of several datasets of one task, in order, under the name ``source``, with
        their curation reports merged (counts added, issues and warnings listed in order)."""
        reports = [d.report for d in datasets if d.report is not None]
        report = CurationReport.merge(reports, source) if reports else None
        return cls([r for d in datasets for r in d], datasets[0].task if datasets else "", source, report)


@dataclass
class CurationIssue:
    """Why one input record was removed."""

    record_id: str
    rule: str
    message: str


@dataclass
class CurationReport:
    """What the curation of one source did: counts kept and removed per rule, and why.

    ``issues``: one entry per removed record. ``warnings``: records kept although a rule had
    something to say about them (e.g. a singular stiffness the benchmark's published split keeps).
    """

    task: str
    source: str
    n_input: int = 0
    n_kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    issues: list[CurationIssue] = field(default_factory=list)
    warnings: list[CurationIssue] = field(default_factory=list)

    def add_issue(self, record_id: str, rule: str, message: str) -> None:
        self.removed[rule] = self.removed.get(rule, 0) + 1
        self.issues.append(CurationIssue(record_id, rule, message))

    def add_warning(self, record_id: str, rule: str, message: str) -> None:
        self.warnings.append(CurationIssue(record_id, rule, message))

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "source": self.source,
            "n_input": self.n_input,
            "n_kept": self.n_kept,
            "removed": dict(self.removed),
            "issues": [vars(i) for i in self.issues],
            "warnings": [vars(i) for i in self.warnings],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CurationReport":
        return cls(d["task"], d["source"], d["n_input"], d["n_kept"], dict(d["removed"]),
                   [CurationIssue(**i) for i in d["issues"]], [CurationIssue(**i) for i in d.get("warnings", [])])

    @classmethod
    def merge(cls, reports: list["CurationReport"], source: str) -> "CurationReport":
        """One report for several curations of the same task (e.g. a union of sources)."""
        merged = cls(task=reports[0].task, source=source)
        for r in reports:
            merged.n_input += r.n_input
            merged.n_kept += r.n_kept
            for rule, n in r.removed.items():
                merged.removed[rule] = merged.removed.get(rule, 0) + n
            merged.issues += r.issues
            merged.warnings += r.warnings
        return merged

    def summary(self) -> str:
        removed = ", ".join(f"{n} {rule}" for rule, n in sorted(self.removed.items())) or "none"
        warned = f"; {len(self.warnings)} kept with a warning" if self.warnings else ""
        return f"{self.n_kept} of {self.n_input} records kept; removed: {removed}{warned}"


def output_labels(records, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """((N, K, 3, ..., 3) labels of the outputs ``names`` (a task's tensor, then its parts: a
    model's ``output_names``), zeros where unknown, and (N, K) bool: which are known (the tensor
    always; a part where the record has parts))."""
    def label(r: TensorRecord, k: int, name: str) -> np.ndarray:
        if k == 0:
            return r.tensor
        return r.parts[name] if r.parts is not None else np.zeros_like(r.tensor)

    labels = np.stack([[label(r, k, name) for k, name in enumerate(names)] for r in records])
    known = np.array([[k == 0 or r.parts is not None for k in range(len(names))] for r in records], dtype=bool)
    return labels, known

