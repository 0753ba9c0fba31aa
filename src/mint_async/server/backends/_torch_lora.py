"""LoRA for the torch backend: adapter layers, plain adapter data, merging and mixing.

Our own small implementation rather than ``peft`` (which installs cleanly, but
pulls in ``accelerate``): the backend needs exactly four things peft does not
make simple — adapters initialised from a private ``torch.Generator`` (peft
draws from the global RNG), frozen *merged* copies for samplers, exact mixing
of several adapters for ``interpolate``, and no warnings under
``filterwarnings = error``. The maths is the standard one (Hu et al., 2021; as
in peft): a frozen ``nn.Linear`` ``W`` gains ``scaling * B @ A`` with ``A``
(rank x in) drawn like ``nn.Linear``'s default (uniform in ``±1/sqrt(in)``)
and ``B`` (out x rank) zero, so a new adapter leaves the model unchanged.

``scaling = LORA_ALPHA / rank`` with a fixed alpha, the "1/r" parametrisation
of Thinking Machines' *LoRA Without Regret*: the best learning rate then
hardly depends on the rank.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import torch
from torch import nn

from mint_async._exceptions import InvalidInputError

__all__ = [
    "ATTN_MODULES",
    "LORA_ALPHA",
    "MLP_MODULES",
    "UNEMBED_MODULES",
    "Adapter",
    "LoraLinear",
    "add_lora",
    "adapter_of",
    "load_adapter",
    "merged_copy",
    "mix_adapters",
    "target_modules",
]

LORA_ALPHA: Final = 32.0
"""``scaling = LORA_ALPHA / rank``."""

ATTN_MODULES: Final = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES: Final = ("gate_proj", "up_proj", "down_proj")
UNEMBED_MODULES: Final = ("lm_head",)


class LoraLinear(nn.Module):
    """``base(x) + scaling * x @ A.T @ B.T`` with ``base`` frozen."""

    def __init__(
        self, base: nn.Linear, rank: int, scaling: float, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.base = base
        self.scaling = scaling
        bound = 1.0 / math.sqrt(base.in_features)
        a = torch.empty(rank, base.in_features).uniform_(-bound, bound, generator=generator)
        self.lora_A = nn.Parameter(a)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        base.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen projection plus the low-rank update."""
        update = nn.functional.linear(nn.functional.linear(x, self.lora_A), self.lora_B)
        out: torch.Tensor = self.base(x) + update * self.scaling
        return out


def target_modules(
    model: nn.Module, *, train_attn: bool, train_mlp: bool, train_unembed: bool
) -> list[str]:
    """Qualified names of the ``nn.Linear`` modules a LoraConfig selects, in model order."""
    wanted = {
        *(ATTN_MODULES if train_attn else ()),
        *(MLP_MODULES if train_mlp else ()),
        *(UNEMBED_MODULES if train_unembed else ()),
    }
    found: list[tuple[str, nn.Module]] = list(model.named_modules())  # pyright: ignore[reportUnknownArgumentType]
    return [
        name
        for name, module in found
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in wanted
    ]


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def add_lora(
    model: nn.Module, names: Sequence[str], rank: int, generator: torch.Generator
) -> dict[str, LoraLinear]:
    """Freeze ``model`` and wrap each named linear layer in a :class:`LoraLinear` (in place)."""
    for param in model.parameters():
        param.requires_grad_(False)
    layers: dict[str, LoraLinear] = {}
    for name in names:
        base = model.get_submodule(name)
        assert isinstance(base, nn.Linear)
        layer = LoraLinear(base, rank, LORA_ALPHA / rank, generator)
        _replace(model, name, layer)
        layers[name] = layer
    return layers


@dataclass(frozen=True, kw_only=True)
class Adapter:
    """LoRA weights as plain tensors: per module ``(A, B)``, and one scaling."""

    factors: Mapping[str, tuple[torch.Tensor, torch.Tensor]]
    scaling: float

    @property
    def rank(self) -> int:
        """The rank (0 for an adapter without modules)."""
        for a, _ in self.factors.values():
            return int(a.shape[0])
        return 0

    def tensors(self) -> dict[str, torch.Tensor]:
        """Flat ``{"<module>.lora_A": A, "<module>.lora_B": B}`` (for safetensors)."""
        flat: dict[str, torch.Tensor] = {}
        for name, (a, b) in self.factors.items():
            flat[f"{name}.lora_A"] = a.contiguous()
            flat[f"{name}.lora_B"] = b.contiguous()
        return flat

    @staticmethod
    def from_tensors(flat: Mapping[str, torch.Tensor], scaling: float) -> Adapter:
        """The inverse of :meth:`tensors`."""
        names = sorted({key.rsplit(".", 1)[0] for key in flat})
        try:
            factors = {n: (flat[f"{n}.lora_A"], flat[f"{n}.lora_B"]) for n in names}
        except KeyError as exc:
            msg = f"the adapter lacks {exc.args[0]!r}"
            raise InvalidInputError(msg) from exc
        return Adapter(factors=factors, scaling=scaling)


def adapter_of(layers: Mapping[str, LoraLinear]) -> Adapter:
    """A detached copy of the layers' current weights."""
    scaling = next(iter(layers.values())).scaling if layers else 1.0
    return Adapter(
        factors={
            name: (layer.lora_A.detach().clone(), layer.lora_B.detach().clone())
            for name, layer in layers.items()
        },
        scaling=scaling,
    )


def load_adapter(layers: Mapping[str, LoraLinear], adapter: Adapter) -> None:
    """Copy ``adapter``'s weights into the layers (same modules, rank and scaling)."""
    if set(adapter.factors) != set(layers):
        msg = (
            f"the checkpoint adapts modules {sorted(adapter.factors)}, this model "
            f"{sorted(layers)} (train_attn/train_mlp/train_unembed differ)"
        )
        raise InvalidInputError(msg)
    for name, layer in layers.items():
        a, b = adapter.factors[name]
        if a.shape != layer.lora_A.shape or b.shape != layer.lora_B.shape:
            msg = f"the checkpoint has LoRA rank {a.shape[0]}, this model rank {layer.lora_A.shape[0]}"
            raise InvalidInputError(msg)
        if not math.isclose(adapter.scaling, layer.scaling):
            msg = f"the checkpoint has LoRA scaling {adapter.scaling}, this model {layer.scaling}"
            raise InvalidInputError(msg)
    with torch.no_grad():
        for name, layer in layers.items():
            a, b = adapter.factors[name]
            layer.lora_A.copy_(a)
            layer.lora_B.copy_(b)


def merged_copy(base: nn.Module, adapter: Adapter | None) -> nn.Module:
    """A frozen copy of ``base`` with ``W + scaling * B @ A`` folded into each adapted layer."""
    model = copy.deepcopy(base)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    if adapter is None:
        return model
    with torch.no_grad():
        for name, (a, b) in adapter.factors.items():
            try:
                layer = model.get_submodule(name)
            except AttributeError as exc:
                msg = f"the adapter names a module the base model lacks: {name!r}"
                raise InvalidInputError(msg) from exc
            if not isinstance(layer, nn.Linear) or layer.weight.shape != (b.shape[0], a.shape[1]):
                msg = f"the adapter does not fit module {name!r} of the base model"
                raise InvalidInputError(msg)
            layer.weight += adapter.scaling * (b @ a)
    return model


def mix_adapters(adapters: Sequence[Adapter], coefficients: Sequence[float]) -> Adapter:
    """An adapter whose update is exactly ``sum(c_i * scaling_i * B_i @ A_i)``.

    Mixing the factors elementwise would not mix the updates (``B A`` is not
    linear in the pair), so the factors are stacked instead: ``A = [A_1; A_2; ...]``,
    ``B = [c_1 s_1 B_1, c_2 s_2 B_2, ...]``, scaling 1 — an adapter of rank
    ``sum(rank_i)``. A module missing from a source contributes nothing.
    """
    names = sorted({name for adapter in adapters for name in adapter.factors})
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in names:
        shape_a, shape_b = next(
            (a.shape, b.shape)
            for ad in adapters
            if name in ad.factors
            for a, b in [ad.factors[name]]
        )
        a_parts: list[torch.Tensor] = []
        b_parts: list[torch.Tensor] = []
        for adapter, coeff in zip(adapters, coefficients, strict=True):
            rank = adapter.rank
            if name in adapter.factors:
                a, b = adapter.factors[name]
                a_parts.append(a)
                b_parts.append(b * (coeff * adapter.scaling))
            else:
                a_parts.append(torch.zeros(rank, shape_a[1]))
                b_parts.append(torch.zeros(shape_b[0], rank))
        factors[name] = (torch.cat(a_parts, dim=0), torch.cat(b_parts, dim=1))
    return Adapter(factors=factors, scaling=1.0)
