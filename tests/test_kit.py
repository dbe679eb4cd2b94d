"""Every model kind through the shared test kit (gmtnet.testing): O(3) equivariance with
reflections, exact symmetry on the seven crystal systems, invariance to the choice of cell, and
every fast form against its reference; and the kit's checks fail where they should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gmtnet.model import build_model
from gmtnet.model.ensemble import EnsembleModel
from gmtnet.symmetry import symmetrize_structure
from gmtnet.testing import (assert_agrees_with_reference, assert_exactly_symmetric, assert_invariant_to_cell_choice,
                            assert_o3_equivariant, ideal_crystals)
from gmtnet.tensors import TENSOR_TYPES
from test_model import BARE, SMALL, triclinic_crystal

TINY_BASELINE = dict(hidden=16, rbf_bins=16)


def kit_models(task: str) -> dict:
    """{name: (model with symmetry enforcement, the same kind without)}, float64, every kind of
    model gmtnet builds. ETGNN, the paper's baseline, has no exact symmetry enforcement (None)."""
    def gmtnet(**kw):
        return (build_model(task, **SMALL, dtype="float64", **kw).eval(),
                build_model(task, **SMALL, dtype="float64", **BARE, **kw).eval())

    models = {
        "gmtnet-paper-knn": gmtnet(graph="knn"),
        "gmtnet-fast-smooth": gmtnet(graph="smooth", inner_lmax=2, message_mul=4, seed=3),
        "etgnn": (None, build_model(task, "etgnn", dtype="float64", **TINY_BASELINE).eval()),
    }
    a, b = models["gmtnet-paper-knn"], gmtnet(graph="knn", seed=7)
    models["ensemble"] = (EnsembleModel([a[0], b[0]]).eval(), EnsembleModel([a[1], b[1]]).eval())
    return models


@pytest.mark.parametrize("task", list(TENSOR_TYPES))
def test_every_model_kind_passes_the_kit(task):
    crystals = ideal_crystals()
    for name, (enforced, bare) in kit_models(task).items():
        try:
            assert_o3_equivariant(bare, triclinic_crystal(2), tol=1e-9)
            if enforced is not None:
                assert_exactly_symmetric(enforced, crystals)
                assert_o3_equivariant(enforced, crystals["alpha_quartz"], tol=1e-9)
            assert_invariant_to_cell_choice(bare, crystals["wurtzite_ZnO"], tol=1e-9)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


@pytest.mark.parametrize("task", ["dielectric", "elastic"])
def test_fast_forms_agree_with_their_reference_forms(task):
    """The fused kernels against e3nn's own products and linears, at one atom per orbit against
    every atom, and the inference form (no autograd) against the training form."""
    crystals = ideal_crystals()
    structures = [symmetrize_structure(crystals[n]) for n in ("rutile_TiO2", "triclinic_1", "wurtzite_ZnO", "alpha_quartz")]
    small = dict(node_dim=16, edge_dim=16, rbf_bins=64, mul_scalars=4, mul_vectors=2, radial_hidden=8, dtype="float64")
    fused = build_model(task, **small).eval()
    plain = build_model(task, edge_product="e3nn", **small).eval()
    plain.load_state_dict(fused.state_dict())
    assert_agrees_with_reference(lambda s: fused.predict([s])[0], lambda s: plain.predict([s])[0], structures,
                                 rtol=1e-9, atol=1e-12)
    assert_agrees_with_reference(lambda s: fused.predict([s], orbits=True)[0],
                                 lambda s: fused.predict([s], orbits=False)[0], structures, rtol=1e-9, atol=1e-12)
    batch = fused.prepared_batch([fused.graph(s) for s in structures])
    training = fused.eval()(batch).detach()  # the training form, in evaluation
    with torch.no_grad():
        inference = fused.for_inference()(batch)
    assert_agrees_with_reference(lambda _: inference, lambda _: training, [None], rtol=1e-10, atol=1e-12)
    assert fused.equivariant_layers[-1].inference and not fused.train().equivariant_layers[-1].inference


def test_the_kit_fails_where_it_should():
    crystals = ideal_crystals()
    megnet = build_model("dielectric", "megnet", dtype="float64", **TINY_BASELINE).eval()  # not equivariant
    with pytest.raises(AssertionError, match="rotation"):
        assert_o3_equivariant(megnet, triclinic_crystal(2), tol=1e-6)

    class Shifted:  # an enforced model with a constant added: breaks forced zeros
        def __init__(self, model):
            self.model, self.ttype = model, model.ttype

        def predict(self, structures, **kw):
            return self.model.predict(structures, **kw) + 1e-3

    enforced = build_model("dielectric", **SMALL, dtype="float64").eval()
    with pytest.raises(AssertionError, match="forced zero"):
        assert_exactly_symmetric(Shifted(enforced), {"rutile": crystals["rutile_TiO2"]})

    class OrderDependent:  # weighs each atom by its place in the list: fails the permutation check
        ttype = enforced.ttype

        def predict(self, structures, **kw):
            return np.stack([np.eye(3) * sum(i * site.specie.Z for i, site in enumerate(s)) for s in structures])

    with pytest.raises(AssertionError, match="permutation"):
        assert_invariant_to_cell_choice(OrderDependent(), crystals["wurtzite_ZnO"], tol=1e-9)
    with pytest.raises(AssertionError, match="differ"):
        assert_agrees_with_reference(lambda x: x + 1e-6, lambda x: x, [np.ones(3)], rtol=1e-9)
