"""Tensors derived from parameters, kept between calls without autograd (prediction) until the
parameters change."""

from __future__ import annotations

from typing import Callable

import torch


class DerivedCache:
    """``get(sources, compute)``: ``compute()``'s result, recomputed only when a source tensor was
    replaced or changed in place (its storage, version counter, dtype or device differ), and
    never cached while autograd records (the result must then carry gradients). It holds the
    sources' storage, so that a new tensor cannot reuse a cached one's address."""

    def __init__(self):
        self._held: list[tuple[torch.Tensor, int]] | None = None
        self._value = None

    def get(self, sources: list[torch.Tensor], compute: Callable[[], object]):
        if torch.is_grad_enabled() and any(s.requires_grad for s in sources):
            self._held = self._value = None
            return compute()
        if self._held is not None and len(self._held) == len(sources) and all(
                h.data_ptr() == s.data_ptr() and v == s._version and h.dtype == s.dtype and h.device == s.device
                and h.shape == s.shape for (h, v), s in zip(self._held, sources)):
            return self._value
        self._value = compute()
        self._held = [(s.detach(), s._version) for s in sources]
        return self._value

    def clear(self) -> None:
        self._held = self._value = None
