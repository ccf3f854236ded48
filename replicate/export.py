"""Export a trained cell's prompt as a peft prompt-tuning adapter (``python -m replicate export-peft``).

peft's prompt tuning (``PromptTuningConfig``, peft_type PROMPT_TUNING) concatenates its
``num_virtual_tokens`` rows in front of the input's word embeddings, gives them attention,
and runs the backbone on the result. A cell exports only where that is the same computation
as the harness's:

- the seq2seq formulation (T5) with ``prompt_position: prefix``: the harness lays out
  ``P_1..P_L input </s>`` and writes the prompt over the slots' embeddings
  (``model.PromptedSeq2Seq``), i.e. the prompt rows in front of the input's embeddings, in the
  encoder alone. That is peft's SEQ_2_SEQ_LM prompt tuning with
  ``num_transformer_submodules: 1`` (peft's default for seq2seq, 2, prompts the decoder too).
  The adapter holds the rows that reach the encoder: a prompt encoder's MLP (ComPT's PT) or
  MPT's decomposition is applied before saving (``train.GroupTrainer._inference_tensors``).
- nothing else. The mrc formulation ADDS its prompt to the embedding layer's output (after the
  position embeddings and the LayerNorm) at slots behind [CLS] (``model.PromptedMRC``); peft
  feeds its rows in before both, and in front of [CLS]: no peft adapter computes that. A
  suffix prompt (ComPT's layout) sits after the input; peft's goes first. Deep prompts (one
  per layer, added to that layer's input) are not keys and values of virtual tokens, which is
  all peft's prefix tuning holds. Model tuning changes the backbone itself.

What a peft adapter cannot carry goes beside it: the task's text-to-text form (the input
wording the prompt was trained on) and, for classification, its verbalizer, in
``replicate_task.json``; the README says how to run it.
"""

from __future__ import annotations

import json
import os
from typing import Dict

from .errors import ConfigError, DataError
from .io import save_safetensors_atomic, write_json_atomic, write_text_atomic
from .results import PROMPT_KEY, read_prompt_file, read_result

ADAPTER_CONFIG = "adapter_config.json"  # peft's CONFIG_NAME
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # peft's SAFETENSORS_WEIGHTS_NAME
PROMPT_WEIGHT_KEY = "prompt_embeddings"  # the key peft saves and loads a prompt-tuning adapter's rows under
TASK_FILE = "replicate_task.json"


def _no_prompt_reason(method, cfg, spec) -> str:
    """Why a finished cell of ``method`` saved no input prompt."""
    if method.multi_task:
        return (f"{method.name} trains a task set in one job: its prompts are composed per task from shared "
                "source prompts, kept in the job's states file, not as one input prompt per cell")
    if method.paradigm == "black-box":
        return f"{method.name} is black-box tuning: its job saves no prompt file"
    if "backbone" in method.trainable_parameters(spec, cfg):
        return f"{method.name} tunes the backbone's own weights: there is no prompt, and a prompt adapter cannot " \
               "carry a changed backbone"
    depth = getattr(method.prompt_modules(spec, cfg).get("prompt"), "depth", 1)
    if depth > 1:
        return (f"{method.name} trains a prompt at each of {depth} layers, added to every layer's input at the "
                "prompt slots; peft's prefix tuning holds keys and values of virtual tokens, which is another "
                "computation, so no peft adapter reproduces it (and deep prompts are not saved)")
    return "the result records no prompt file (written before replicate saved prompts?); rerun its job"


def _refusal(cfg) -> str:
    """Why a cell whose input prompt was saved still cannot be a peft adapter ("" if it can)."""
    formulation = getattr(cfg, "formulation", "mrc")
    if formulation == "mrc":
        return ("its mrc formulation adds the prompt to the embedding layer's output (after the position "
                "embeddings and LayerNorm) at slots behind [CLS]; peft's prompt tuning feeds its rows in before "
                "both and in front of [CLS], so no peft adapter computes the same thing (the prompt and span "
                "head stay in the cell's prompt file, for this harness)")
    if formulation != "seq2seq":
        return f"the {formulation} formulation has no peft counterpart"
    if cfg.prompt_position != "prefix":
        return (f"its prompt_position is {cfg.prompt_position!r}: the prompt sits after the input, while peft "
                "puts its rows in front of it")
    return ""


def _task_record(result: dict, cfg) -> dict:
    """What the adapter does not carry: the input wording and, for classification, the verbalizer."""
    from .tasks import TASKS

    task = TASKS.get(result["task"])
    fmt = task.formats[cfg.text_format]
    return {"task": task.name, "kind": task.kind, "text_format": cfg.text_format, "prefix": fmt.prefix,
            "input": fmt.input, "targets": list(fmt.targets), "reader": cfg.reader,
            "max_target_length": cfg.max_target_length, "max_length": cfg.max_length,
            "prompt_tokens_in_max_length": cfg.prompt_length}


def _readme(result: dict, base: str, task: dict, n_tokens: int, d_model: int) -> str:
    verbalizer = (f"Its answers are the strings {', '.join(map(repr, task['targets']))} (label 0, 1, ...), read by "
                  f"{task['reader']!r}" if task["targets"] else f"Its answers are generated text ({task['kind']})")
    return f"""# {result['method']} prompt: {result['task']}, shot {result['shot']}, seed {result['seed']}

A peft prompt-tuning adapter (SEQ_2_SEQ_LM, {n_tokens} virtual tokens of width {d_model}, encoder only) exported by
`python -m replicate export-peft` from a cell trained on backbone `{result['backbone']}` (`{base}`); test
{result['metric']} {result['score']}. It is the cell's tested prompt, unchanged: peft puts it in front of the input's
embeddings, where the harness trained it.

    from peft import PeftModel
    from transformers import T5ForConditionalGeneration
    model = PeftModel.from_pretrained(T5ForConditionalGeneration.from_pretrained("{base}"), "<this folder>")

What the adapter cannot carry is in `{TASK_FILE}`: the prompt was trained on the input written as
`{task['prefix'] + ' ' if task['prefix'] else ''}{task['input']}` (the `{task['text_format']}` form of
{task['task']}), without special tokens but a closing `</s>`, at most {task['max_length']} tokens with the prompt.
{verbalizer}.
"""


def export_peft(result_path: str, out_dir: str) -> Dict[str, str]:
    """Write the peft adapter of the cell at ``result_path`` into ``out_dir``; its files by role.
    ConfigError naming why for a cell that cannot be one (module docstring); DataError for a
    missing, edited or unfinished cell or prompt file. Nothing is written before the checks."""
    from .backbones import BACKBONES
    from .methods.base import method_of

    result = read_result(result_path)
    cell = "/".join(str(result.get(k)) for k in ("method", "backbone", "task", "shot", "seed"))
    if result["status"] != "ok":
        raise DataError(f"cell {result_path} ({cell}) did not finish (status {result['status']}): nothing to export")
    settings = result["provenance"]["settings"]
    method = method_of(settings)
    cfg = method.make_config(settings["method_config"])
    spec = BACKBONES.get(settings["backbone"])
    if result.get(PROMPT_KEY) is None:
        raise ConfigError(f"cell {cell} cannot be exported as a peft adapter: {_no_prompt_reason(method, cfg, spec)}")
    refusal = _refusal(cfg)
    if refusal:
        raise ConfigError(f"cell {cell} cannot be exported as a peft adapter: {refusal}")
    tensors = read_prompt_file(result_path, result)
    prompt = tensors["prompt"]
    n_tokens, d_model = prompt.shape
    base = settings.get("backbone_dir") or spec.source or spec.name
    adapter = {
        "peft_type": "PROMPT_TUNING", "task_type": "SEQ_2_SEQ_LM", "base_model_name_or_path": base,
        "num_virtual_tokens": n_tokens, "token_dim": d_model,
        "num_transformer_submodules": 1,  # the encoder alone, as the harness prompts it (peft's seq2seq default: 2)
        "num_attention_heads": spec.n_heads, "num_layers": spec.n_layers,
        "prompt_tuning_init": "RANDOM",  # how peft would initialise a new prompt; the saved rows replace it
        "inference_mode": True, "revision": None, "auto_mapping": None,
    }
    task = _task_record(result, cfg)
    out = {"config": os.path.join(out_dir, ADAPTER_CONFIG), "weights": os.path.join(out_dir, ADAPTER_WEIGHTS),
           "task": os.path.join(out_dir, TASK_FILE), "readme": os.path.join(out_dir, "README.md")}
    save_safetensors_atomic({PROMPT_WEIGHT_KEY: prompt.contiguous()}, out["weights"], metadata={"format": "pt"})
    write_text_atomic(out["config"], json.dumps(adapter, indent=2) + "\n")
    write_json_atomic(out["task"], {**task, "cell": cell, "result": os.path.abspath(result_path),
                                    "prompt_sha256": result[PROMPT_KEY]["sha256"]})
    write_text_atomic(out["readme"], _readme(result, base, task, n_tokens, d_model))
    return out
