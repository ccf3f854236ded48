"""A tiny random checkpoint with CPT-large's files, key names and tokenizer convention.

What fnlp/cpt-large holds, scaled down: ``config.json`` in CPT's BART-style keys,
``vocab.txt`` for ``BertTokenizer`` (BERT-Chinese layout: [PAD] 0, [unused1..99],
[UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then characters and ``##`` pieces), and
``pytorch_model.bin`` with every key CPTForQuestionAnswering saves: the 24-layer-style BERT
under ``model.encoder.*`` (here 4 layers), the generation decoder under ``model.decoder.*``,
``model.shared.weight`` and ``qa_outputs.*`` (key patterns and shapes from fastnlp/CPT
finetune/modeling_cpt.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

D, FFN, ENCODER_LAYERS, DECODER_LAYERS, HEADS, POSITIONS = 32, 64, 4, 1, 2, 512
EXTRA_CHARS = "，。？！：；、“”‘’（）《》【】…—·\"'"


def _vocab(fixture_dir: Path) -> list:
    chars = set(EXTRA_CHARS)
    tasks = Path(__file__).resolve().parent.parent / "replicate" / "tasks"
    templates = [tasks / "paper.py", tasks / "cloze.py"]  # MP2's templates; BBT's cloze templates and label words
    for path in sorted(fixture_dir.glob("*.jsonl")) + templates:
        chars.update(ch for ch in path.read_text(encoding="utf-8") if not ch.isspace())
    chars.update("abcdefghijklmnopqrstuvwxyz0123456789")
    ordered = sorted(chars)
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += ordered + [f"##{c}" for c in ordered]
    code = 0x4E00
    while len(vocab) < 1200:  # room for the prompt slots 1000..1049 (MPMP's ids)
        if chr(code) not in chars:
            vocab.append(chr(code))
        code += 1
    return vocab


def write_tiny_cpt(directory: Path, fixture_dir: Path) -> Path:
    from transformers import BertConfig, BertModel

    directory.mkdir(parents=True, exist_ok=True)
    vocab = _vocab(fixture_dir)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = {"architectures": ["CPTForConditionalGeneration"], "model_type": "bart", "vocab_size": len(vocab),
              "d_model": D, "encoder_layers": ENCODER_LAYERS, "decoder_layers": DECODER_LAYERS,
              "encoder_attention_heads": HEADS, "decoder_attention_heads": HEADS, "encoder_ffn_dim": FFN,
              "decoder_ffn_dim": FFN, "max_position_embeddings": POSITIONS, "activation_function": "gelu",
              "activation_dropout": 0.1, "attention_dropout": 0.1, "dropout": 0.1, "init_std": 0.02,
              "pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102, "decoder_start_token_id": 102,
              "scale_embedding": False}
    (directory / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    with torch.random.fork_rng():
        torch.manual_seed(4321)
        encoder = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=D, num_hidden_layers=ENCODER_LAYERS,
                                       num_attention_heads=HEADS, intermediate_size=FFN,
                                       max_position_embeddings=POSITIONS), add_pooling_layer=False)
        state = {f"model.encoder.{k}": v.clone() for k, v in encoder.state_dict().items()}
        words = state["model.encoder.embeddings.word_embeddings.weight"]
        state["model.shared.weight"] = words.clone()
        state["model.decoder.embed_tokens.weight"] = words.clone()
        state["model.decoder.embed_positions.weight"] = torch.randn(POSITIONS + 2, D) * 0.02
        for j in range(DECODER_LAYERS):
            for attn in ("self_attn", "encoder_attn"):
                for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
                    state[f"model.decoder.layers.{j}.{attn}.{proj}.weight"] = torch.randn(D, D) * 0.02
                    state[f"model.decoder.layers.{j}.{attn}.{proj}.bias"] = torch.zeros(D)
            for norm in ("self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"):
                state[f"model.decoder.layers.{j}.{norm}.weight"] = torch.ones(D)
                state[f"model.decoder.layers.{j}.{norm}.bias"] = torch.zeros(D)
            state[f"model.decoder.layers.{j}.fc1.weight"] = torch.randn(FFN, D) * 0.02
            state[f"model.decoder.layers.{j}.fc1.bias"] = torch.zeros(FFN)
            state[f"model.decoder.layers.{j}.fc2.weight"] = torch.randn(D, FFN) * 0.02
            state[f"model.decoder.layers.{j}.fc2.bias"] = torch.zeros(D)
        state["model.decoder.layernorm_embedding.weight"] = torch.ones(D)
        state["model.decoder.layernorm_embedding.bias"] = torch.zeros(D)
        state["qa_outputs.weight"] = torch.randn(2, D) * 0.02
        state["qa_outputs.bias"] = torch.zeros(2)
    torch.save(state, directory / "pytorch_model.bin")
    return directory
