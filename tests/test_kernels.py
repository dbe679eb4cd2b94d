"""The speed-ups compute the same functions as their reference forms (float64): the fused edge
tensor product against e3nn's, the per-node split of the invariant layer against its equations,
the windowed radial basis against the full one, and whole models built either way."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from e3nn import o3
from hypothesis import given, settings
from hypothesis import strategies as st

from gmtnet.model import build_model
from gmtnet.model.block_linear import BlockLinear
from gmtnet.model.edge_product import FusedEdgeTensorProduct
from gmtnet.model.embedding import EdgeEmbedding
from gmtnet.model.equivariant import EquivariantLayer, hidden_irreps
from gmtnet.model.invariant import InvariantLayer
from gmtnet.tensors.irreps import float64_default


@settings(max_examples=16, deadline=None)
@given(lmax_in=st.integers(0, 3), lmax_sh=st.integers(1, 3), lmax_out=st.integers(1, 3),
       mul=st.sampled_from([None, 2, 3]), even_out=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_edge_product_equals_e3nn(lmax_in, lmax_sh, lmax_out, mul, even_out, seed):
    """Float64 values, sums over edges and gradients against e3nn's TensorProduct, for layers with
    both parities out and with even irreps out only (as the elastic model's last layer: parity
    twins then couple differently and, their products being small, share one group)."""
    with float64_default():
        irreps_in = hidden_irreps(lmax_in, 3, 2) if lmax_in else o3.Irreps("5x0e")
        irreps_out = hidden_irreps(lmax_out, 3, 2)
        if even_out:
            irreps_out = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.p == 1])
        layer = EquivariantLayer(irreps_in, irreps_out, o3.Irreps.spherical_harmonics(lmax_sh),
                                 edge_dim=4, radial_hidden=4, message_mul=mul)
        fused = FusedEdgeTensorProduct(layer.tp)
        g = torch.Generator().manual_seed(seed)
        e, n = 23, 5
        x1 = torch.randn(e, layer.irreps_msg.dim, generator=g, requires_grad=True)
        x2 = torch.randn(e, layer.irreps_sh.dim, generator=g)
        w = torch.randn(e, layer.tp.weight_numel, generator=g, requires_grad=True)
        dst = torch.randint(0, n, (e,), generator=g)
        ref = layer.tp(x1, x2, w)
        assert torch.allclose(fused(x1, x2, w), ref, atol=1e-12)
        summed = torch.zeros(n, ref.shape[1], dtype=ref.dtype).index_add_(0, dst, ref)
        out = fused(x1, x2, w, dst=dst, n_out=n)
        assert torch.allclose(out, summed, atol=1e-12)
        with torch.no_grad():  # the in-place weighting used without autograd
            assert torch.allclose(fused(x1, x2, w, dst=dst, n_out=n), summed, atol=1e-12)
        ordered = w[:, fused.weight_order]  # weights already in the kernel's order
        assert torch.allclose(fused(x1, x2, ordered, dst=dst, n_out=n, ordered=True), summed, atol=1e-12)
        empty = fused(x1[:0], x2[:0], w[:0], dst=dst[:0], n_out=n)
        assert empty.shape == summed.shape and not empty.any()
        # outputs of some l skipped: those columns 0, the others unchanged
        skip = {ir.l for _, ir in layer.tp.irreps_out if ir.l % 2}
        column_l = torch.tensor([ir.l for mul, ir in layer.tp.irreps_out for _ in range(mul * ir.dim)])
        pruned = FusedEdgeTensorProduct(layer.tp, skip_l=frozenset(skip))
        expected = summed.clone()
        expected[:, torch.isin(column_l, torch.tensor(sorted(skip), dtype=torch.long))] = 0.0
        assert torch.allclose(pruned(x1, x2, w, dst=dst, n_out=n), expected, rtol=0, atol=1e-12)
        probe = torch.randn(out.shape, generator=g)
        grads = torch.autograd.grad((out * probe).sum(), (x1, w))
        grads_ref = torch.autograd.grad((summed * probe).sum(), (x1, w))
        for a, b in zip(grads, grads_ref):
            assert torch.allclose(a, b, atol=1e-12)


def test_fused_edge_product_merges_small_products_of_parity_twins():
    """Where one parity's blocks couple differently from the other's, they keep separate products
    unless one would be small (fewer than _SMALL_PRODUCT multiply-adds per edge): then blocks of
    equal l share one product. The dielectric model's last layer (prediction form) has both."""
    from gmtnet.model.edge_product import _SMALL_PRODUCT

    model = build_model("dielectric", preset="fast")
    pruned = model.equivariant_layers[-1].pruned["fused_tp"]
    by_l: dict = {}
    for group in pruned.groups:
        by_l.setdefault(group.l, []).append(group)
    sizes = {l: [(2 * l + 1) * g.width * g.channels for g in groups] for l, groups in by_l.items()}
    merged = [l for l, groups in by_l.items() if l > 0 and len(groups) == 1 and len(groups[0].members) > 1]
    apart = [l for l, groups in by_l.items() if len(groups) > 1]
    assert merged and apart, sizes
    assert all(min(sizes[l]) >= _SMALL_PRODUCT for l in apart if l > 0)


def test_fused_edge_product_rejects_what_it_cannot_compute():
    tp = o3.FullyConnectedTensorProduct("2x0e+1x1o", "1x0e+1x1o", "2x0e")
    with pytest.raises(ValueError, match="uvu"):
        FusedEdgeTensorProduct(tp)


_IRREPS = ["0e", "0o", "1o", "1e", "2e", "2o", "3o"]


@settings(max_examples=25, deadline=None)
@given(ins=st.lists(st.tuples(st.integers(1, 4), st.sampled_from(_IRREPS)), min_size=1, max_size=6),
       outs=st.lists(st.tuples(st.integers(1, 4), st.sampled_from(_IRREPS)), min_size=1, max_size=6),
       scale=st.sampled_from([1.0, 0.0625]), seed=st.integers(0, 2**16))
def test_block_linear_equals_e3nn_linear(ins, outs, scale, seed):
    """BlockLinear (one product per l, matrices gathered from the weights) against o3.Linear on
    unsorted irreps with repeats and outputs no input reaches: values and gradients in float64,
    and its cached matrices (without autograd) follow in-place changes of the weights."""
    with float64_default():
        linear = o3.Linear(o3.Irreps(ins), o3.Irreps(outs))
        block = BlockLinear(linear, input_scale=scale)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(linear.weight.shape, generator=g))
        x = torch.randn(5, linear.irreps_in.dim, generator=g, requires_grad=True)
        ref, out = linear(scale * x), block(x, linear.weight)
        assert out.shape == ref.shape and torch.allclose(out, ref, rtol=0, atol=1e-13)
        if ref.numel() and linear.weight.numel():
            probe = torch.randn(ref.shape, generator=g)
            grads = torch.autograd.grad((out * probe).sum(), (x, linear.weight))
            grads_ref = torch.autograd.grad((ref * probe).sum(), (x, linear.weight))
            for a, b in zip(grads, grads_ref):
                assert torch.allclose(a, b, rtol=0, atol=1e-13)
        with torch.no_grad():
            assert torch.allclose(block(x, linear.weight), ref, rtol=0, atol=1e-13)  # fills the cache
            linear.weight.mul_(-2.0)  # in place: the version counter moves on
            assert torch.allclose(block(x, linear.weight), linear(scale * x), rtol=0, atol=1e-13)
            skip = {ir.l for _, ir in linear.irreps_out if ir.l % 2 == 0}  # outputs of even l not computed
            column_l = torch.tensor([ir.l for mul, ir in linear.irreps_out for _ in range(mul * ir.dim)], dtype=torch.long)
            expected = linear(scale * x)
            expected[:, torch.isin(column_l, torch.tensor(sorted(skip), dtype=torch.long))] = 0.0
            assert torch.allclose(BlockLinear(linear, scale, frozenset(skip))(x, linear.weight), expected, rtol=0,
                                  atol=1e-13)


def test_block_linear_rejects_biases():
    with pytest.raises(ValueError, match="biases"):
        BlockLinear(o3.Linear("2x0e", "3x0e", biases=True))


def test_invariant_layer_split_form_equals_its_equations():
    torch.manual_seed(0)
    with float64_default():
        layer = InvariantLayer(8, 6)
        f, f_edge = torch.randn(7, 8), torch.randn(40, 6)
        src, dst = torch.randint(0, 7, (40,)), torch.randint(0, 7, (40,))
        assert torch.allclose(layer(f, f_edge, src, dst), layer.forward_reference(f, f_edge, src, dst), atol=1e-12)


def test_invariant_layer_inference_form_equals_its_equations():
    """The inference form (composed maps, batch norm folded into q, in-place steps) equals the
    layer's equations and its training form in evaluation, with edge multiplicities, in float64;
    derived again after a change of the weights; and it refuses to run under autograd."""
    torch.manual_seed(2)
    with float64_default():
        layer = InvariantLayer(8, 6)
        with torch.no_grad():
            for bn in (layer.bn_alpha, layer.bn_msg):
                bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.normal_(), bn.bias.normal_()
        layer.eval()
        f, f_edge = torch.randn(7, 8), torch.randn(40, 6)
        src, dst = torch.randint(0, 7, (40,)), torch.randint(0, 7, (40,))
        mult = torch.randint(1, 4, (40,)).double()
        for _ in range(2):
            layer.leave_inference()
            general = layer(f, f_edge, src, dst, edge_mult=mult)  # the training form, in evaluation
            layer.enter_inference()
            with pytest.raises(RuntimeError, match="inference form"):
                layer(f, f_edge, src, dst)
            with torch.no_grad():
                assert torch.allclose(layer(f, f_edge, src, dst), layer.forward_reference(f, f_edge, src, dst),
                                      rtol=0, atol=1e-12)
                assert torch.allclose(layer(f, f_edge, src, dst, edge_mult=mult), general, rtol=0, atol=1e-12)
                layer.xi_v[2].weight.mul_(0.5)
                layer.bn_alpha.running_mean.add_(0.3)
                stale = layer(f, f_edge, src, dst)  # the form of the old weights until derived again
                assert not torch.allclose(stale, layer.forward_reference(f, f_edge, src, dst), rtol=0, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.floats(0.7, 12.0), min_size=1, max_size=30))
def test_windowed_radial_basis_equals_the_full_expansion(lengths):
    torch.manual_seed(1)
    with float64_default():
        emb = EdgeEmbedding(0.75, -4.0, 0.0, 512, 16)
        r = torch.tensor(lengths)
        assert torch.allclose(emb(r), emb.forward_reference(r), rtol=0, atol=1e-14)
        with torch.no_grad():  # the in-place form used without autograd
            assert torch.allclose(emb(r), emb.forward_reference(r), rtol=0, atol=1e-14)


def _assert_same_values_and_gradients(a, b, graph_batches, atol: float) -> None:
    """Two float64 models with the same weights: equal outputs on every batch of graphs, and equal
    parameter gradients of the summed squared outputs (accumulated over the batches)."""
    a.train(), b.train()
    for graphs in graph_batches:
        ya, yb = a(a.prepared_batch(graphs)), b(b.prepared_batch(graphs))
        assert torch.allclose(ya, yb, rtol=1e-9, atol=atol)
        ya.square().sum().backward()
        yb.square().sum().backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-8, atol=atol), name


@pytest.mark.parametrize("task", ["dielectric", "elastic"])
def test_models_with_fused_and_e3nn_kernels_agree(crystals, task):
    small = dict(node_dim=16, edge_dim=16, rbf_bins=64, mul_scalars=4, mul_vectors=2, radial_hidden=8, dtype="float64")
    fused = build_model(task, **small)
    plain = build_model(task, edge_product="e3nn", **small)
    plain.load_state_dict(fused.state_dict())
    structures = [crystals[name] for name in ("rutile_TiO2", "triclinic_1", "wurtzite_ZnO")]
    _assert_same_values_and_gradients(fused, plain, [[fused.graph(s) for s in structures]], atol=1e-10)
    assert np.allclose(fused.predict(structures), plain.predict(structures), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("orbits", [False, True])
def test_edge_features_of_distinct_lengths_equal_per_edge_features(crystals, orbits):
    """f^e and the radial filters computed once per distinct edge length give the values and
    parameter gradients of computing them edge by edge (float64), in training and prediction."""
    small = dict(node_dim=16, edge_dim=16, rbf_bins=64, mul_scalars=4, mul_vectors=2, radial_hidden=8, dtype="float64")
    model = build_model("dielectric", **small)
    graphs = [model.graph(crystals[n]) for n in ("rutile_TiO2", "triclinic_1", "wurtzite_ZnO", "alpha_quartz")]
    batch = model.prepared_batch(graphs, orbits=orbits)
    distinct, rows = model.edge_features(batch.edge_vec)
    assert rows is not None and len(distinct) < len(rows)  # the crystals do repeat lengths
    assert torch.allclose(distinct[rows], model.edge_embedding(batch.edge_vec.norm(dim=1)), rtol=1e-13, atol=1e-14)
    per_edge = build_model("dielectric", **small)
    per_edge.load_state_dict(model.state_dict())
    per_edge.edge_features = lambda vec: (per_edge.edge_embedding(vec.norm(dim=1)), None)
    ya, yb = model(batch), per_edge(batch)  # training mode, autograd on
    assert torch.allclose(ya, yb, rtol=1e-12, atol=1e-12)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), per_edge.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12), name
    model.eval(), per_edge.eval()
    with torch.no_grad():
        assert torch.allclose(model(batch), per_edge(batch), rtol=1e-12, atol=1e-12)
    # a derivative with respect to the edge vectors keeps one row per edge
    vec = batch.edge_vec.clone().requires_grad_(True)
    assert model.edge_features(vec)[1] is None


@pytest.mark.parametrize("task", ["dielectric", "elastic"])
def test_prediction_skips_only_outputs_the_tensor_cannot_contain(crystals, task):
    """The last layer's irreps of an l the tensor lacks (dielectric 1e, elastic 1e and 3e) are not
    computed without autograd; outputs equal the full computation's (with autograd) in float64,
    and the skipped features are exactly 0."""
    small = dict(node_dim=16, edge_dim=16, rbf_bins=64, mul_scalars=4, mul_vectors=2, radial_hidden=8, dtype="float64")
    model = build_model(task, **small).eval()
    last = model.equivariant_layers[-1]
    assert last.unused_l == ({1} if task == "dielectric" else {1, 3}) and last.pruned is not None
    graphs = [model.graph(crystals[n]) for n in ("rutile_TiO2", "triclinic_1", "wurtzite_ZnO", "alpha_quartz")]
    for orbits in (False, True):
        batch = model.prepared_batch(graphs, orbits=orbits)
        full = model.eval()(batch).detach()
        model.for_inference()
        with torch.no_grad():
            assert torch.allclose(model(batch), full, rtol=1e-12, atol=1e-13 * full.abs().max())
            features = model.crystal_features(batch)
        unused = torch.cat([torch.full((mul * ir.dim,), ir.l in last.unused_l) for mul, ir in model.irreps_hidden])
        assert features[:, unused].abs().max() == 0.0 and features[:, ~unused].abs().max() > 0.0


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_kernels_compute_the_same_values_and_gradients(crystals):
    """``compile_kernels`` (torch.compile of the invariant layers and fused tensor products) against eager,
    float64, on two batches of different sizes (dynamic shapes): outputs and gradients, and predictions."""
    small = dict(node_dim=16, edge_dim=16, rbf_bins=64, mul_scalars=4, mul_vectors=2, radial_hidden=8,
                 dtype="float64", inner_lmax=2, message_mul=2, n_invariant=1, n_equivariant=2)
    eager = build_model("piezoelectric", **small)
    compiled = build_model("piezoelectric", **small)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_kernels()
    batches = [[eager.graph(crystals[n]) for n in names]
               for names in (("rutile_TiO2", "triclinic_1", "wurtzite_ZnO"), ("alpha_quartz", "monoclinic_2"))]
    _assert_same_values_and_gradients(eager, compiled, batches, atol=1e-12)
    # prediction runs without autograd, where the fused product weights its terms in place
    graphs = [g for batch in batches for g in batch]
    np.testing.assert_allclose(compiled.predict_graphs(graphs), eager.predict_graphs(graphs), rtol=1e-9, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6))
def test_wigner_matrices_equal_e3nn(seed, n):
    from gmtnet.symmetry import averaged_wigner, wigner_matrices
    from gmtnet.tensors.transform import random_orthogonal

    rng = np.random.default_rng(seed)
    rots = np.stack([random_orthogonal(rng) for _ in range(n)])
    d = wigner_matrices(rots, 4)
    irreps = o3.Irreps("1x0e+1x0o+1x1e+1x1o+1x2e+1x2o+1x3e+1x3o+1x4e+1x4o")
    averaged = averaged_wigner(rots, irreps)
    with float64_default():
        for _, ir in irreps:
            ref = ir.D_from_matrix(torch.as_tensor(rots)).numpy()
            sign = np.where(np.linalg.det(rots) < 0, ir.p, 1.0)[:, None, None]
            assert np.allclose(d[ir.l] * sign, ref, atol=1e-12), ir
            assert np.allclose(averaged[(ir.l, ir.p)], ref.mean(axis=0), atol=1e-12), ir


def test_averaged_wigner_of_many_groups_equals_one_group_at_a_time(crystals):
    """point_group_data (one call for a batch) against averaged_wigner crystal by crystal, and the
    collated batch's projectors against both, for graphs of all seven crystal systems."""
    from gmtnet.graph import build_graph
    from gmtnet.model.batch import collate
    from gmtnet.symmetry import PointGroupNeeds, analyze_symmetry, averaged_wigner, point_group_data

    irreps = o3.Irreps("2x0e+1x0o+2x1o+1x1e+1x2e+1x2o+1x3o")
    graphs = [build_graph(s, k=8, symmetry=analyze_symmetry(s)) for s in crystals.values()]
    for g, record in zip(graphs, point_group_data(graphs, PointGroupNeeds(irreps=irreps))):
        g.point_group = record
    batch = collate(graphs[::-1], irreps)
    for b, g in enumerate(graphs[::-1]):
        alone = averaged_wigner(g.rotations, irreps)
        for key, value in alone.items():
            np.testing.assert_allclose(g.point_group.averaged_wigner[str(irreps)][key], value, rtol=0, atol=1e-13)
            np.testing.assert_allclose(batch.feature_projectors[key][b].numpy(), value, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["dielectric", "piezoelectric", "elastic"])
def test_batched_group_action_equals_kronecker_products(name, rng):
    from gmtnet.tensors import get_tensor_type
    from gmtnet.tensors.transform import group_action_matrices, random_orthogonal, tensor_action_matrix

    ttype = get_tensor_type(name)
    rots = np.stack([random_orthogonal(rng) for _ in range(5)])
    batched = group_action_matrices(rots, ttype)
    for r, m in zip(rots, batched):
        assert np.allclose(m, tensor_action_matrix(r, ttype), atol=1e-14)


@pytest.mark.parametrize("task", ["dielectric", "piezoelectric", "elastic"])
def test_layer_gate_equals_e3nn_gate(task):
    """EquivariantLayer._gate (a permutation read off e3nn's Gate, activations, one gated product)
    against e3nn's Gate itself, float64, values and gradients, every layer."""
    model = build_model(task, node_dim=16, edge_dim=16, rbf_bins=64, mul_scalars=4, mul_vectors=2, radial_hidden=8,
                        dtype="float64")
    g = torch.Generator().manual_seed(0)
    for layer in model.equivariant_layers:
        assert layer._fast_gate
        x = torch.randn(9, layer.gate.irreps_in.dim, generator=g, dtype=torch.float64, requires_grad=True)
        ref, out = layer.gate(x), layer._gate(x)
        assert torch.allclose(out, ref, rtol=0, atol=1e-14)
        probe = torch.randn(ref.shape, generator=g, dtype=torch.float64)
        (grad_ref,), (grad,) = torch.autograd.grad((ref * probe).sum(), x), torch.autograd.grad((out * probe).sum(), x)
        assert torch.allclose(grad, grad_ref, rtol=0, atol=1e-14)
