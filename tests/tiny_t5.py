"""A tiny random T5 written as local files, as the Hub ships T5 (config.json, model.safetensors
with T5's key names, a tokenizer.json), for tests of the text-to-text path without the Hub.

No T5 weights or SentencePiece model ship in a PyPI package, so the tokenizer is a
word-level one (whitespace-split words, T5's special tokens at T5's ids: <pad> 0, </s> 1,
<unk> 2) over the words of the texts it is given; the model is a 2-layer T5 with d = 32 whose
weights depend on a fixed seed alone.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Iterable

TINY_T5_CONFIG = dict(d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)
VOCAB_SIZE = 512


def write_tiny_t5(directory: str, texts: Iterable[str], vocab_size: int = VOCAB_SIZE) -> str:
    """Write a tiny T5 (weights, config, tokenizer) under ``directory``; its vocabulary is the
    most frequent whitespace-split words of ``texts`` (every number 0.0 ... 5.0 in steps of 0.1
    included, STS-B's targets)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    special = ["<pad>", "</s>", "<unk>"]
    numbers = [f"{i / 10:.1f}" for i in range(51)]
    counts = Counter(w for t in texts for w in t.split())
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in special + numbers]
    vocab = {w: i for i, w in enumerate((special + numbers + words)[:vocab_size])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    os.makedirs(directory, exist_ok=True)
    fast.save_pretrained(directory)
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        model = T5ForConditionalGeneration(T5Config(vocab_size=vocab_size, **TINY_T5_CONFIG))
    model.save_pretrained(directory)
    return directory
