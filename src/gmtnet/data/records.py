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
    """

    material_id: str
    structure: object
    tensor: np.ndarray
    split: str | None
    task: str
    spacegroup_number: int = 0
    crystal_system: str = ""

    def to_dict(self) -> dict:
        return {
            "material_id": self.material_id,
            "structure": self.structure.as_dict(),
            "tensor": np.asarray(self.tensor, dtype=float).tolist(),
            "split": self.split,
            "task": self.task,
            "spacegroup_number": self.spacegroup_number,
            "crystal_system": self.crystal_system,
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

    def summary(self) -> str:
        removed = ", ".join(f"{n} {rule}" for rule, n in sorted(self.removed.items())) or "none"
        warned = f"; {len(self.warnings)} kept with a warning" if self.warnings else ""
        return f"{self.n_kept} of {self.n_input} records kept; removed: {removed}{warned}"
