"""A tiny, deterministic, offline tokenizer for the local server, tests and the demo.

The local reference server reports a ``tokenizer_id`` that is a local directory,
so ``get_tokenizer()`` works with ``HF_HUB_OFFLINE=1``. The tokenizer is a small
byte-level BPE trained with ``tokenizers`` on a built-in corpus (digits split
one by one, so arithmetic is learnable by a tiny model), saved with a chat
template in the Qwen3 format and the special tokens of the Qwen3 and Llama 3
chat formats. Building it twice gives byte-identical files.

``tokenizers``/``transformers`` are imported only when a tokenizer is built or loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final

# The Qwen3 chat format as the real Qwen3 template renders it (think blocks after
# the last user message, an empty one on the final assistant turn, an empty one in
# the generation prompt when thinking is disabled). Shared with mint_async.recipe,
# whose `qwen3` renderer produces exactly this template's tokens.
from mint_async._chat_templates import QWEN3_CHAT_TEMPLATE

__all__ = [
    "QWEN3_CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "TINY_TOKENIZER_NAME",
    "build_tiny_tokenizer",
    "corpus",
    "ensure_tiny_tokenizer",
    "load_tokenizer",
]

TINY_TOKENIZER_NAME: Final = "mint-tiny-bpe"
VOCAB_SIZE: Final = 384

SPECIAL_TOKENS: Final = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)
"""Control tokens of the Qwen3 (ChatML) and Llama 3 formats, ids 0..6."""

THINK_TOKENS: Final = ("<think>", "</think>")
"""Added (non-special) tokens, as in Qwen3: they stay in decoded text."""


def corpus() -> list[str]:
    """The built-in training text: arithmetic Q&A, chat-shaped lines and plain English."""
    lines: list[str] = []
    for a in range(1, 13):
        for b in range(1, 13):
            lines.append(f"Question: What is {a} * {b}?\nAnswer: {a * b}")
            lines.append(f"What is {a} + {b}? {a + b}")
    words = (
        "the quick brown fox jumps over the lazy dog while a model learns to answer "
        "questions about numbers and words with care you are a helpful assistant "
        "user system assistant hello world think step by step answer question what is"
    )
    lines.extend([words] * 8)
    lines.extend(["0123456789 +-*/=?.,:;!()[]{}<>'\"\n"] * 4)
    return lines


def _tokenizer_files(directory: Path, chat_template: str) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.add_tokens(list(THINK_TOKENS))  # pyright: ignore[reportUnknownMemberType]
    tok.save(str(directory / "tokenizer.json"))
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": 4096,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "chat_template": chat_template,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    (directory / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, indent=2)
    )


def build_tiny_tokenizer(
    directory: str | os.PathLike[str], chat_template: str | None = None
) -> Path:
    """Build the tokenizer files into ``directory`` (created if needed); returns the path.

    ``chat_template`` replaces the Qwen3 chat template (tests use it to get a
    tokenizer carrying another format's template, e.g. Llama 3's).
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    _tokenizer_files(path, QWEN3_CHAT_TEMPLATE if chat_template is None else chat_template)
    return path


def _cache_key() -> str:
    material = json.dumps([QWEN3_CHAT_TEMPLATE, SPECIAL_TOKENS, THINK_TOKENS, VOCAB_SIZE, corpus()])
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def ensure_tiny_tokenizer(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The tokenizer directory, built once per content version and reused afterwards.

    The default cache lives under the system temp dir. Building writes to a
    temporary sibling and renames it into place, so concurrent callers are safe.
    """
    root = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "mint_async"
    target = root / f"{TINY_TOKENIZER_NAME}-{_cache_key()}"
    if (target / "tokenizer_config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tok-", dir=root))
    build_tiny_tokenizer(staging)
    try:
        staging.rename(target)
    except OSError:
        # Someone else finished first; theirs is identical.
        for f in staging.iterdir():
            f.unlink()
        staging.rmdir()
    return target


def load_tokenizer(directory: str | os.PathLike[str]) -> Any:
    """Load a tokenizer directory with transformers (offline)."""
    from transformers import AutoTokenizer  # noqa: PLC0415

    auto: Any = AutoTokenizer
    return auto.from_pretrained(str(directory), local_files_only=True)
