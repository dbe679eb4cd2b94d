"""Data-parallel training: torchrun with 2 CPU processes (gloo) computes the same training steps
as 1 process with the same global batch, and the global batch norm is batch norm."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from gmtnet.training import TrainConfig, train
from gmtnet.training.distributed import DistributedContext, GlobalBatchNorm1d

TINY = dict(node_dim=16, edge_dim=16, rbf_bins=32, mul_scalars=4, mul_vectors=2, radial_hidden=8, dtype="float64")


def _cfg(out, mp_root) -> TrainConfig:
    # 24 crystals in global batches of 8: three steps per epoch, shards of 4 crystals
    return TrainConfig(task="dielectric", epochs=2, batch_size=8, limit=24, val_limit=4, data_root=str(mp_root),
                       out=str(out), model_overrides=dict(TINY), threads=1)


def test_two_process_training_matches_one_process(tmp_path, mp_root):
    single = _cfg(tmp_path / "one", mp_root)
    train(single, progress=False, cache_dir=tmp_path / "cache1")
    script = tmp_path / "run_ddp.py"
    double = _cfg(tmp_path / "two", mp_root)
    script.write_text(textwrap.dedent(f"""
        from gmtnet.training import TrainConfig, train
        train(TrainConfig(**{double.to_dict()!r}), progress=False, cache_dir={str(tmp_path / "cache2")!r})
    """))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = torch.load(tmp_path / "one" / "last.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "last.pt", weights_only=False)
    assert two["epoch"] == one["epoch"] == 2
    for key, value in one["model"].items():
        if value.is_floating_point():
            assert torch.allclose(two["model"][key], value, rtol=1e-7, atol=1e-9), key
        else:
            assert torch.equal(two["model"][key], value), key
    for a, b in zip(one["history"], two["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9)
        assert a["val_fnorm"] == pytest.approx(b["val_fnorm"], rel=1e-7)


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    x = torch.randn(10, 3, dtype=torch.float64)
    plain = torch.nn.BatchNorm1d(3).double()
    glob = torch.nn.BatchNorm1d(3).double()
    glob.__class__ = GlobalBatchNorm1d
    assert torch.equal(plain(x), glob(x))  # no process group: the plain path


def test_shards_cover_the_global_batch_once():
    import numpy as np

    idx = np.arange(11)
    parts = [DistributedContext(rank=r, world_size=3).shard(idx) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), idx) and [len(p) for p in parts] == [4, 4, 3]
