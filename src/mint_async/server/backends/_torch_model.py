"""The torch backend's base model: a tiny Qwen3 causal LM, built offline from a seed.

The architecture is ``transformers``' own ``Qwen3ForCausalLM`` (RMSNorm, RoPE,
grouped-query attention with q/k norms, SwiGLU MLP), scaled down to about
170,000 parameters so it trains on two CPU cores, over the vocabulary of the
tiny offline tokenizer (:mod:`._tiny_tokenizer`). Its weights are
``transformers``' initialisation under ``torch.manual_seed(seed)`` (in a forked
RNG, so the process's global generator is left alone): the same seed gives the
same model on every machine, with nothing downloaded.

Also here: turning wire inputs into token tensors, and the batched forward
pass every operation shares.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from mint_async.types import ModelInput

from ._inputs import token_ids as shared_token_ids

__all__ = [
    "MAX_CONTEXT",
    "TINY_CONFIG",
    "TINY_MODEL_NAME",
    "build_base_model",
    "cached_step",
    "fingerprint",
    "forward_logits",
    "from_numpy",
    "to_floats",
    "to_ints",
    "token_ids",
]

TINY_MODEL_NAME: Final = "mint-tiny-qwen3"
"""The torch backend's own name for its base model (every other name maps to it too)."""

MAX_CONTEXT: Final = 2048

TINY_CONFIG: Final[dict[str, Any]] = {
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": MAX_CONTEXT,
    # Separate embedding and unembedding, so a LoRA on lm_head (train_unembed)
    # never touches the input embeddings.
    "tie_word_embeddings": False,
}
"""``Qwen3Config`` fields of the tiny model (plus ``vocab_size`` from the tokenizer)."""


# torch's annotations leave a few members partially unknown to pyright strict;
# these helpers are the one typed boundary for them.


def from_numpy(array: npt.NDArray[Any]) -> torch.Tensor:
    """``torch.from_numpy``, sharing memory unless ``array`` is read-only (then a copy).

    Decoded wire arrays can be read-only views of the request body; torch warns
    about those (tensors are writable), so they are copied — they are small.
    """
    if not array.flags.writeable:
        array = array.copy()
    tensor: torch.Tensor = torch.from_numpy(array)  # pyright: ignore[reportUnknownMemberType]
    return tensor


def to_floats(tensor: torch.Tensor) -> list[Any]:
    """``tensor.tolist()`` of a float tensor (nested lists for more than one dimension)."""
    values: Any = tensor
    out: list[Any] = values.tolist()
    return out


def to_ints(tensor: torch.Tensor) -> list[Any]:
    """``tensor.tolist()`` of an integer tensor (nested lists for more than one dimension)."""
    return to_floats(tensor)


def build_base_model(vocab_size: int, seed: int) -> nn.Module:
    """The tiny Qwen3 model with ``transformers``' initialisation under ``seed``, frozen, in eval mode."""
    from transformers import Qwen3Config, Qwen3ForCausalLM  # noqa: PLC0415 - heavy import

    # Eager attention: the tiny model gains nothing from fused kernels (measured:
    # equal or slower), and one code path serves training and cached sampling.
    config_class: Any = Qwen3Config  # attn_implementation is a PretrainedConfig kwarg
    config = config_class(vocab_size=vocab_size, attn_implementation="eager", **TINY_CONFIG)
    random: Any = torch.random
    with random.fork_rng(devices=[]):
        random.manual_seed(seed)
        model: nn.Module = Qwen3ForCausalLM(config)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def fingerprint(model: nn.Module) -> str:
    """Identifies a base model by its weights: checkpoints of another base are refused, not misapplied.

    Hashing the weights themselves (0.7 MB) also catches a ``transformers``
    release that initialises the same seed differently.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def token_ids(model_input: ModelInput, vocab: int, what: str) -> npt.NDArray[np.int64]:
    """The token ids of a text-only ModelInput, checked against the vocabulary and the context."""
    return shared_token_ids(model_input, vocab, what, backend="torch", max_context=MAX_CONTEXT)


def forward_logits(model: nn.Module, sequences: Sequence[npt.NDArray[np.int64]]) -> torch.Tensor:
    """Float32 logits ``[batch, longest, vocab]`` of right-padded sequences in one pass.

    No attention mask is needed: attention is causal, so a position never sees
    the padding that follows its sequence, and rows are independent.
    """
    longest = max((len(s) for s in sequences), default=0)
    ids = torch.zeros((len(sequences), max(longest, 1)), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = from_numpy(seq)
    logits: torch.Tensor = model(input_ids=ids, use_cache=False).logits
    return logits.float()


_CACHE_KEYWORDS: dict[type, str] = {}


def _cache_keyword(model_class: type) -> str:
    # transformers 5.x renamed forward's ``past_key_values`` to ``cache`` (the old
    # name warns, and goes in 5.40); older releases (down to our floor, 4.51) only
    # know ``past_key_values``. The signature says which one this release has.
    keyword = _CACHE_KEYWORDS.get(model_class)
    if keyword is None:
        forward: Any = getattr(model_class, "forward")  # noqa: B009 - Any, for inspect
        params = inspect.signature(forward).parameters
        keyword = _CACHE_KEYWORDS[model_class] = "cache" if "cache" in params else "past_key_values"
    return keyword


def output_cache(out: Any) -> Any:
    """The KV cache a forward pass returned (``out.cache``, or ``past_key_values`` before 5.x).

    The new field is read first: on 5.x reading the old name is what warns.
    """
    fields: Any = getattr(out, "__dataclass_fields__", {})
    return out.cache if "cache" in fields else out.past_key_values


def cached_step(model: nn.Module, input_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
    """One forward pass with a KV cache: the logits ``[batch, new tokens, vocab]`` and the new cache.

    ``cache=None`` runs the whole prompt and starts a cache; otherwise only
    ``input_ids`` (the new tokens) are fed and the cache is extended. The keyword
    is the one this ``transformers`` release spells (see ``_cache_keyword``).
    """
    kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": True}
    if cache is not None:
        kwargs[_cache_keyword(type(model))] = cache
    out: Any = model(**kwargs)
    logits: torch.Tensor = out.logits
    return logits, output_cache(out)
