"""SPoT (Vu et al. 2022), transfer: prompt tuning from one soft prompt trained multi-task on
the source tasks (MP2's re-implementation, MP2 A.1: MP2's 38 upstream tasks, Adam, batch
32, lr 3e-3, 650K steps, prompt length 50; "an ablation study on the effect of the modular
prompt").

The source prompt is a pre-training run with ``prompt: single`` over the upstream tasks in
MP2's MRC layout (``replicate.pretrain``); downstream, every seed starts from its prompt and
MRC head (``ppt.FormattedPrompt``, layout "options"). SPoT's released code
(google-research/prompt-tuning) reads a source prompt from a file as the initial prompt (``prompt_tuning/spot/README.md``); its retrieval variant (a prompt per source task, task embeddings, nearest
source by cosine similarity) is not built here yet (docs/methods/spot.md).
"""

from __future__ import annotations

from .base import register_method
from .ppt import FormattedPrompt

register_method(FormattedPrompt("spot", "SPoT", {"pretraining": "spot"}))
