"""Experiments as configuration: a table of training runs, read from a TOML file.

The paper's tables ship as files in ``gmtnet/training/tables/`` (``gmtnet reproduce TABLE``);
``gmtnet reproduce FILE.toml`` runs one of your own. A file holds:

    title = "..."                 # the report's heading
    kind = "metrics"              # metrics (test-split metrics per run), rotations (test Fnorm
                                  # in frames rotated 45 degrees about x, y, z) or timing
                                  # (seconds per training batch of 64)
    references = [0, 200]         # optional trivial predictors scored beside the runs:
                                  # 0 = predict zero, N = the mean label of the first N crystals

    [[runs]]                      # one table per run; the fields of ``Run``
    label = "gmtnet-fnorm"
    task = "dielectric"
    loss = "fnorm"
    seeds = [1, 2, 3]             # several seeds: evaluated as their ensemble
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from gmtnet.errors import GmtnetError
from gmtnet.tensors import get_tensor_type
from gmtnet.utils.io import parse_toml

TABLE_FOLDER = Path(__file__).parent / "tables"
KINDS = ("metrics", "rotations", "timing")
TABLE_KEYS = ("title", "kind", "references", "runs")


@dataclass
class Run:
    """One trained model of a table: ``label`` names it in the table and in runs/."""

    label: str
    task: str
    model: str = "gmtnet"
    group_average: bool = False
    model_overrides: dict = field(default_factory=dict)
    limit: int | None = None  # train on the first N training crystals only (learning curves)
    preset: str | None = None  # GMTNet preset of this run; None: the command's --preset
    loss: str = "huber"  # the paper's; "fnorm" trains on the Fnorm metric itself (TrainConfig.loss)
    seeds: tuple[int, ...] = (0,)  # several: one run per seed, evaluated as their ensemble (mean)
    init_from: str | None = None  # transfer learning: start from this run directory's best.pt (under runs/)
    exclude: str | None = None  # "TASK:SPLIT[+SPLIT]": crystals left out of training and validation

    def run_dirs(self, root: Path) -> list[Path]:
        """Where each seed's run lives: runs/<label>-<task> for one seed, else runs/<label>-s<seed>-<task>."""
        if len(self.seeds) == 1:
            return [root / f"{self.label}-{self.task}"]
        return [root / f"{self.label}-s{seed}-{self.task}" for seed in self.seeds]


def _run(entry, source: str, index: int) -> Run:
    where = f"{source}: run {index + 1}"
    if not isinstance(entry, dict):
        raise GmtnetError(f"{where}: expected a table of settings")
    known = {f.name for f in fields(Run)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise GmtnetError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    missing = [k for k in ("label", "task") if k not in entry]
    if missing:
        raise GmtnetError(f"{where}: missing {', '.join(missing)}")
    try:
        task = get_tensor_type(entry["task"]).name
    except (KeyError, ValueError):
        raise GmtnetError(f"{where}: unknown task {entry['task']!r}") from None
    seeds = entry.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise GmtnetError(f"{where}: seeds must be a non-empty list of integers")
    if not isinstance(entry.get("model_overrides", {}), dict):
        raise GmtnetError(f"{where}: model_overrides must be a table")
    return Run(**{**entry, "task": task, "seeds": tuple(seeds)})


def parse_experiment(text: str, source: str = "experiment") -> dict:
    """{"title", "kind", "runs": [Run], "references": [None | N]} of a TOML experiment's text;
    GmtnetError naming ``source`` and the problem for anything else."""
    try:
        data = parse_toml(text)
    except ValueError as exc:
        raise GmtnetError(f"{source}: not TOML ({exc})") from None
    unknown = sorted(set(data) - set(TABLE_KEYS))
    if unknown:
        raise GmtnetError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(TABLE_KEYS)})")
    kind = data.get("kind", "metrics")
    if kind not in KINDS:
        raise GmtnetError(f"{source}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise GmtnetError(f"{source}: no [[runs]]")
    references = data.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, int) and r >= 0 for r in references):
        raise GmtnetError(f"{source}: references must be a list of non-negative integers")
    return {"title": str(data.get("title", source)), "kind": kind,
            "runs": [_run(entry, source, i) for i, entry in enumerate(runs)],
            "references": [None if r == 0 else r for r in references]}


def read_experiment(path: str | Path) -> dict:
    """``parse_experiment`` of a file."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GmtnetError(f"{path}: cannot be read ({type(exc).__name__})") from None
    return parse_experiment(text, str(path))


def packaged_tables() -> dict[str, dict]:
    """{name: experiment} of the tables shipped with gmtnet (the paper's and the studies')."""
    return {p.stem: read_experiment(p) for p in sorted(TABLE_FOLDER.glob("*.toml"))}
