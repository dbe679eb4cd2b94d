"""The inference forms of GMTNet's layers: the same functions as their training forms, rewritten
for evaluation without autograd, and chosen only by ``TensorModel.for_inference()``.

``for_inference()`` puts a model in evaluation mode and has every layer that has an inference
form derive it from its current parameters once (``enter_inference``); ``train()``, ``eval()``
and ``load_state_dict`` drop them again (``leave_inference``), so a form never outlives the
weights it was derived from. A layer in its inference form refuses to run while autograd
records. The forms (each tested against its layer's equations, tests/test_kernels.py and the
shared test kit):

- invariant layer: the linear maps before the gathers composed into one product per side, batch
  norm's running statistics folded into the queries, in-place element-wise steps
  (``invariant_inference_weights`` / ``invariant_inference_forward``);
- equivariant layers: outputs the tensor head cannot use are not computed (the last layer's
  pruned kernels, ``EquivariantLayer.skip_unused_outputs``), and the gathered block matrices of
  the linear maps are kept (``BlockLinear.freeze``).
"""

from __future__ import annotations

import torch
from torch import nn

from gmtnet.model.batch import per_edge


def invariant_inference_weights(layer) -> tuple[torch.Tensor, ...]:
    """The maps of an InvariantLayer's ``forward`` composed for evaluation, where BN_alpha is the
    affine map x s + t of its running statistics: (w_dst (3d, d), b_dst) give [q' | k_dst | v_dst]
    per node, with q' = q s / sqrt(d) and xi_K's first bias in k_dst; (w_src (2d, d), b_src) give
    [k_src | v_src]; (w_edge, b_edge) is xi_V's edge block after LN_E (and xi_V's first bias);
    and t. Then BN_alpha(alpha) = q' * key + t."""
    d = layer.lin_q.weight.shape[0]
    bn = layer.bn_alpha
    inv_std = torch.rsqrt(bn.running_var + bn.eps)
    s = bn.weight * inv_std if bn.affine else inv_std
    t = (bn.bias if bn.affine else 0.0) - bn.running_mean * s
    wk, wv = layer.xi_k[0].weight, layer.xi_v[0].weight
    q_scale = (s * layer.scale)[:, None]
    blocks_dst = [(layer.lin_q.weight * q_scale, layer.lin_q.bias * q_scale[:, 0]),
                  (wk[:, :d] @ layer.lin_k.weight, wk[:, :d] @ layer.lin_k.bias + layer.xi_k[0].bias),
                  (wv[:, :d] @ layer.lin_v.weight, wv[:, :d] @ layer.lin_v.bias)]
    blocks_src = [(wk[:, d:] @ layer.lin_k.weight, wk[:, d:] @ layer.lin_k.bias),
                  (wv[:, d:2 * d] @ layer.lin_v.weight, wv[:, d:2 * d] @ layer.lin_v.bias)]
    w_edge, b_edge = layer.edge_block()
    cat = torch.cat
    return (cat([w for w, _ in blocks_dst]), cat([b for _, b in blocks_dst]),
            cat([w for w, _ in blocks_src]), cat([b for _, b in blocks_src]), w_edge, b_edge, t)


def invariant_inference_forward(layer, weights, f, f_edge, src, dst, edge_mult=None, edge_rows=None) -> torch.Tensor:
    """An InvariantLayer's ``forward`` in evaluation with the composed ``weights``
    (``invariant_inference_weights``): the same function, with the per-edge steps in place."""
    d = f.shape[1]
    w_dst, b_dst, w_src, b_src, w_edge, b_edge, t = weights
    at_dst = nn.functional.linear(f, w_dst, b_dst).index_select(0, dst)  # [E, 3d]: q' | k_dst | v_dst
    at_src = nn.functional.linear(f, w_src, b_src).index_select(0, src)  # [E, 2d]: k_src | v_src
    k_pre = torch.add(at_dst[:, d:2 * d], at_src[:, :d])
    key = layer.xi_k[2](nn.functional.silu(k_pre, inplace=True))  # [E, d]
    v_pre = per_edge(nn.functional.linear(f_edge, w_edge, b_edge), edge_rows).add_(at_dst[:, 2 * d:]).add_(at_src[:, d:])
    value = layer.xi_v[2](nn.functional.silu(v_pre, inplace=True))  # [E, d]
    msg = torch.addcmul(t, at_dst[:, :d], key).sigmoid_().mul_(value)  # sigmoid(BN(alpha)) * value
    if edge_mult is not None:
        msg.mul_(edge_mult[:, None])
    agg = torch.zeros_like(f).index_add_(0, dst, msg)  # [N, d]
    return nn.functional.softplus(f + layer.bn_msg(agg))


def refuse_autograd(layer) -> None:
    """RuntimeError if autograd records while ``layer`` runs its inference form."""
    if torch.is_grad_enabled():
        raise RuntimeError(f"{type(layer).__name__} is in its inference form (model.for_inference()), which "
                           "computes no gradients: call model.eval() or model.train() first, or run under torch.no_grad()")
