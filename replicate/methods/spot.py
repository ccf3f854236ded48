"""SPoT (Vu et al. 2022): prompt tuning from a prompt trained on source tasks.

Transfer (``spot``, MP2 Table 3's "SPoT" row): one soft prompt trained multi-task on the
source tasks (MP2's re-implementation, MP2 A.1: MP2's 38 upstream tasks, Adam, batch 32,
lr 3e-3, 650K steps, prompt length 50; "an ablation study on the effect of the modular
prompt"). The source prompt is a pre-training run with ``prompt: single`` over the upstream
tasks in MP2's MRC layout (``replicate.pretrain``); downstream, every seed starts from its
prompt and MRC head (``ppt.FormattedPrompt``). SPoT's released code (google-research/
prompt-tuning, ``prompt_tuning/spot/README.md``) reads a source prompt from a file as the
initial prompt; its retrieval is not released (reference notes).

Retrieval (``spot-retrieval``, SPoT §4): a prompt per source task (a pre-training run with
``prompt: per-task``), prompts read as task embeddings, and the target task's nearest source
as its initialisation. The target's embedding is its own prompt after ``probe_epochs`` of PT
from the vocabulary init on the seed's few-shot training set (stage "probe", never the
tested checkpoint). The probe trains the prompt alone, against the pre-training's MRC head,
frozen: the source prompts were all trained against that one shared head, so the target's
prompt is compared to them in the same head's space (in SPoT every prompt conditions the
same frozen model, output layer included). Each source is scored by ``similarity``:
"average-tokens", the cosine of the two prompts' average tokens, or "per-token", the average
cosine over every pair of their tokens (SPoT's two measures). The seed's prompt is then
replaced by the best source's prompt, its head stays the pre-training's (``transfer_head``
false: a fresh draw replaces it), and the "transfer" stage tunes both for ``epochs``. Every
result records, in its probe stage, the source it took and the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import torch

from ..errors import ConfigError
from .base import check_fields, register_method, require_pretraining
from .ppt import FormattedPrompt, PretrainedPromptConfig

SIMILARITIES = ("average-tokens", "per-token")


@dataclass
class SpotRetrievalConfig(PretrainedPromptConfig):
    """SPoT with retrieval (the shared fields: see PretrainedPromptConfig).

    pretraining: a run with ``prompt: per-task`` (one prompt per source task).
    probe_epochs: epochs of PT on the target's few-shot training set that give its task
        embedding (the prompt alone trains, against the pre-training's head, frozen; its dev
        scores are not used).
    transfer_head: the head the transfer stage starts from: the pre-training's (True) or a
        fresh draw (False); the probe always uses the pre-training's.
    similarity: "average-tokens" or "per-token" (SPoT §4).
    """

    probe_epochs: int = 4
    similarity: str = "average-tokens"

    def validate(self) -> None:
        super().validate()
        check_fields(self, choices={"similarity": SIMILARITIES}, at_least_one=("probe_epochs",))
        if not self.pretraining:
            raise ConfigError("pretraining: name the per-task pre-training whose prompts are the sources")


def similarities(target: torch.Tensor, sources: torch.Tensor, how: str) -> torch.Tensor:
    """Similarity of a (length, d) target prompt to each of (n, length, d) source prompts."""
    if how == "average-tokens":
        return torch.nn.functional.cosine_similarity(target.mean(0, keepdim=True), sources.mean(1), dim=-1)
    t = torch.nn.functional.normalize(target, dim=-1)
    s = torch.nn.functional.normalize(sources, dim=-1)
    return torch.einsum("id,njd->nij", t, s).mean(dim=(1, 2))


class SpotRetrieval(FormattedPrompt):
    config_cls = SpotRetrievalConfig

    def check_pretraining(self, cfg: SpotRetrievalConfig, name: str, pretrain_cfg) -> None:
        require_pretraining(self.name, name, pretrain_cfg, prompt="per-task", layout=cfg.layout,
                            prompt_length=cfg.prompt_length)

    def build(self, backbone, spec, tokenizer, cfg: SpotRetrievalConfig, seeds: List[int], init_tokens=None,
              pretrained=None):
        if pretrained is None or "source_prompts" not in pretrained:
            raise ConfigError(f"{self.name}: needs the source prompts of a per-task pre-training")
        sources = pretrained["source_prompts"]
        if tuple(sources.shape[1:]) != (cfg.prompt_length, spec.d_model):
            raise ConfigError(f"{self.name}: the source prompts are {tuple(sources.shape[1:])} (length, d); the "
                              f"method's config needs ({cfg.prompt_length}, {spec.d_model})")
        from ..model import PromptedMRC
        from .common import pretrained_span_head, span_head

        backbone.requires_grad_(False)
        head = pretrained["head"].float()
        # the probe's start: PT's prompt init, and the pre-training's head (frozen in the probe)
        model = PromptedMRC(backbone, spec, pretrained_span_head(head, len(seeds)),
                            self.make_prompt(backbone, spec, cfg, seeds, init_tokens))
        fresh = None if cfg.transfer_head else span_head(spec.d_model, seeds).weight.detach()
        model.retrieval_sources = (sources, fresh, list(pretrained["tasks"]))
        return model

    def probe_groups(self, model, cfg: SpotRetrievalConfig) -> List[Dict]:
        """The probe trains the prompt alone: the head is the pre-training's, frozen."""
        return [{"params": list(model.prompt.parameters()), "lr": cfg.lr}]

    def stages(self, model, cfg: SpotRetrievalConfig):
        from ..train import Stage

        sources, fresh, tasks = model.retrieval_sources

        def retrieve(seeds: List[int]) -> Dict[int, Dict]:
            out = {}
            with torch.no_grad():
                for s in seeds:
                    sims = similarities(model.prompt.weight[s].float(), sources, cfg.similarity)
                    best = int(sims.argmax())  # the first of equals, as the ranking's stable sort
                    model.prompt.weight[s].copy_(sources[best])
                    if fresh is not None:  # transfer_head false: the transfer starts from a fresh head
                        model.head.weight[s].copy_(fresh[s])
                    ranking = sorted(zip(tasks, sims.tolist()), key=lambda x: -x[1])
                    out[s] = {"retrieved": tasks[best], "similarity": [[t, round(v, 5)] for t, v in ranking]}
            return out

        return [Stage("probe", cfg.probe_epochs, self.probe_groups(model, cfg), selects=False, leave=retrieve),
                Stage("transfer", cfg.epochs, self.param_groups(model, cfg))]


register_method(FormattedPrompt("spot", "SPoT", {"pretraining": "spot"}))
register_method(SpotRetrieval("spot-retrieval", "SPoT (retrieval)", {"pretraining": "spot-sources"}))
