"""export-peft (replicate/export.py): a trained PT cell's prompt as a peft prompt-tuning adapter.

A real PT cell is trained on a tiny random T5 written as local files (tests/tiny_t5.py) in
the text-to-text formulation, through the train job; its exported adapter is loaded by peft
(``PeftModel.from_pretrained``) on the same backbone, and peft's forward must give the
harness's encoder states and decoder logits on a batch: the same prompt, in the same place.
Cells that cannot be an adapter (mrc formulation, model tuning) and missing, edited or
unfinished cells are refused in one line, exit 2, before anything is written.
"""

import copy
import json
import shutil

import pytest
import torch

from conftest import FIXTURES, TINY_CONFIG, t2t_files, train_first_group
from replicate.cli import main
from replicate.config import Cell, check_config, result_path
from replicate.results import prompt_path
from tiny_t5 import write_tiny_t5

TASK = "rte"  # classification (a verbalizer), a pair of texts


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    from replicate.tasks import TASKS

    texts = [line for path in sorted((FIXTURES / "text2text").glob("rte_*.jsonl")) for line in
             path.read_text().replace('"', " ").splitlines()]
    fmt = TASKS.get(TASK).formats["attempt"]
    return write_tiny_t5(str(tmp_path_factory.mktemp("tiny-t5")), texts + [fmt.input, fmt.prefix, *fmt.targets])


def t5_config(results_dir, t5_dir, method="pt", **method_fields):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg.update(results_dir=str(results_dir), backbone_dirs={"tiny-t5-files": t5_dir}, paper_data_files=t2t_files(TASK),
               protocol={"scheme": "attempt", "data_seed": 42, "dev_holdout": 4})
    cfg["grid"].update(backbone="tiny-t5-files", tasks=[TASK], shots=[4], seeds=[8], methods=[method])
    cfg["methods"] = {method: {"formulation": "seq2seq", "epochs": 2, "batch_size": 4, "max_length": 48,
                               "max_target_length": 6, "eval_batch_size": 32, **method_fields}}
    if method != "model-tuning":
        cfg["methods"][method].update(prompt_length=4, lr=0.3)
    return check_config(cfg)


@pytest.fixture(scope="module")
def pt_cell(tmp_path_factory, t5_dir):
    """(config, result path) of a PT cell trained on the tiny T5 (seq2seq, prefix prompt)."""
    cfg = t5_config(tmp_path_factory.mktemp("export") / "results", t5_dir)
    [result] = train_first_group(cfg, None)
    assert result["status"] == "ok", result["error"]
    return cfg, result_path(cfg, Cell("pt", "tiny-t5-files", TASK, 4, 8))


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err.strip()


def harness_and_peft_outputs(cfg, cell_path, adapter_dir):
    """On one batch of the cell's test examples: (harness encoder states, harness logits, peft
    encoder states, peft logits, prompt length), the harness's PromptedSeq2Seq holding the
    cell's saved prompt and peft's adapter on a fresh copy of the same backbone."""
    from peft import PeftModel
    from safetensors.torch import load_file

    from replicate.backbones import BACKBONES
    from replicate.jobs import read_manifests, task_of
    from replicate.methods.base import method_of
    from replicate.model import InputPrompt, PromptedSeq2Seq
    from replicate.seq2seq import collate_text
    from replicate.splits import resolve

    result = json.loads(open(cell_path).read())
    settings = result["provenance"]["settings"]
    method = method_of(settings)
    mcfg = method.make_config(settings["method_config"])
    spec = BACKBONES.get("tiny-t5-files")
    ours, tokenizer = spec.load(local_dir=settings["backbone_dir"], seq2seq=True, attention="eager")
    theirs, _ = spec.load(local_dir=settings["backbone_dir"], seq2seq=True, attention="eager")
    prompt = load_file(prompt_path(cell_path))["prompt"]
    model = PromptedSeq2Seq(ours, InputPrompt(prompt[None])).eval()
    task = task_of(settings)
    [manifest] = read_manifests(settings, task.name, [8], [result["split"]["path"]])
    encoder = method.encoder(tokenizer, task, mcfg, spec)
    items = [encoder.encode(ex) for ex in resolve(manifest, task.load_pools(str(FIXTURES)))["test"][:6]]
    batch = collate_text(items, [0] * len(items), tokenizer.pad_token_id)
    length = prompt.shape[0]
    peft_model = PeftModel.from_pretrained(theirs, str(adapter_dir)).eval()
    with torch.no_grad():
        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        logits = model.decode(hidden, batch.attention_mask, batch.target_ids, batch.target_mask)
        start = torch.full_like(batch.target_ids[:, :1], model.start_id)
        decoder_in = torch.cat([start, batch.target_ids[:, :-1].masked_fill(~batch.target_mask[:, :-1], model.pad_id)],
                               dim=1)
        # peft prepends its own rows: it is given the input without the harness's prompt slots
        out = peft_model(input_ids=batch.input_ids[:, length:], attention_mask=batch.attention_mask[:, length:],
                         decoder_input_ids=decoder_in)
    return hidden, logits, out.encoder_last_hidden_state, out.logits, length


def test_peft_runs_the_exported_prompt_as_the_harness_does(capsys, tmp_path, pt_cell):
    from replicate.tasks import TASKS

    pytest.importorskip("peft", reason="peft is not installed (pip install -e '.[test]' installs it)")
    cfg, cell_path = pt_cell
    code, out, err = run_cli(capsys, "export-peft", cell_path, "--out", tmp_path / "adapter")
    assert code == 0, err
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (config["peft_type"], config["task_type"], config["num_virtual_tokens"], config["token_dim"],
            config["num_transformer_submodules"]) == ("PROMPT_TUNING", "SEQ_2_SEQ_LM", 4, 32, 1)
    assert config["base_model_name_or_path"] == cfg["backbone_dirs"]["tiny-t5-files"]
    hidden, logits, peft_hidden, peft_logits, length = harness_and_peft_outputs(cfg, cell_path, tmp_path / "adapter")
    assert peft_hidden.shape == hidden.shape and peft_logits.shape == logits.shape
    torch.testing.assert_close(peft_hidden, hidden, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(peft_logits, logits, rtol=1e-5, atol=1e-5)
    task = json.loads((tmp_path / "adapter" / "replicate_task.json").read_text())
    assert task["targets"] == ["0", "1"] and task["text_format"] == "attempt" and task["prefix"] == "rte"
    result = json.loads(open(cell_path).read())
    assert (task["input"], task["prompt_sha256"], task["cell"]) == (
        TASKS.get(TASK).formats["attempt"].input, result["prompt_file"]["sha256"], f"pt/tiny-t5-files/{TASK}/4/8")
    readme = (tmp_path / "adapter" / "README.md").read_text()
    assert cfg["backbone_dirs"]["tiny-t5-files"] in readme and "Its answers are the strings '0', '1'" in readme


def test_prompt_path_mirrors_the_innermost_cells_tree_or_sits_beside_the_result(tmp_path):
    """A results folder may itself lie under a folder named ``cells``: the prompts tree is beside
    the cells tree the result is in; a result outside any cells tree keeps its prompt beside it."""
    cell = tmp_path / "cells" / "results" / "cells" / "tiny-t5-files" / TASK / "shot4" / "pt" / "seed8.json"
    assert prompt_path(str(cell)) == str(tmp_path / "cells" / "results" / "prompts" / "tiny-t5-files" / TASK / "shot4" /
                                         "pt" / "seed8.safetensors")
    by_hand = tmp_path / "by-hand"
    assert prompt_path(str(by_hand / "seed8.json")) == str(by_hand / "seed8.prompt.safetensors")


def test_the_train_job_saves_the_tested_prompt_where_its_result_says(pt_cell):
    """The prompt file sits in the prompts tree (the cell's folder keeps its results alone), its
    sha256 is in the sealed result, and it is the tested checkpoint's: the cell's test score
    comes back when the saved prompt is put in the model."""
    from safetensors.torch import load_file

    from replicate.backbones import BACKBONES
    from replicate.io import sha256_file
    from replicate.jobs import read_manifests, task_of
    from replicate.methods.base import method_of
    from replicate.model import InputPrompt, PromptedSeq2Seq
    from replicate.splits import resolve
    from replicate.train import predict_rows

    cfg, cell_path = pt_cell
    result = json.loads(open(cell_path).read())
    saved = prompt_path(cell_path)
    assert saved == f"{cfg['results_dir']}/prompts/tiny-t5-files/{TASK}/shot4/pt/seed8.safetensors"
    assert result["prompt_file"] == {"path": f"../../../../../prompts/tiny-t5-files/{TASK}/shot4/pt/seed8.safetensors",
                                     "sha256": sha256_file(saved), "shapes": {"prompt": [4, 32]}}
    settings = result["provenance"]["settings"]
    method = method_of(settings)
    mcfg = method.make_config(settings["method_config"])
    spec = BACKBONES.get("tiny-t5-files")
    backbone, tokenizer = spec.load(local_dir=settings["backbone_dir"], seq2seq=True, attention="eager")
    model = PromptedSeq2Seq(backbone, InputPrompt(load_file(saved)["prompt"][None])).eval()
    task = task_of(settings)
    [manifest] = read_manifests(settings, task.name, [8], [result["split"]["path"]])
    encoder = method.encoder(tokenizer, task, mcfg, spec)
    test = [encoder.encode(ex) for ex in resolve(manifest, task.load_pools(str(FIXTURES)))["test"]]
    formulation = method.formulation(mcfg, task)
    preds = predict_rows(formulation, model, [(0, e) for e in test], tokenizer.pad_token_id, torch.device("cpu"), 32)
    assert formulation.score(encoder, test, preds) == result["metrics"]


def test_the_saved_prompt_is_the_best_dev_epochs_not_the_last(tmp_path, t5_dir, pt_cell):
    """The 2-epoch cell tests epoch 1 (dev ties go to the earliest epoch), so its saved prompt is
    the one a 1-epoch run of the same seed ends with (constant learning rate, the same
    shuffles: the first epoch is the same computation), bit for bit."""
    from safetensors.torch import load_file

    _, cell_path = pt_cell
    assert json.loads(open(cell_path).read())["dev"]["best_epoch"] == 1  # this test's premise
    one_epoch = t5_config(tmp_path / "results", t5_dir, epochs=1)
    train_first_group(one_epoch, None)
    first = load_file(prompt_path(result_path(one_epoch, Cell("pt", "tiny-t5-files", TASK, 4, 8))))["prompt"]
    assert torch.equal(load_file(prompt_path(cell_path))["prompt"], first)


def bert_cell(results_dir, method):
    """A cell of ``method`` on the tiny BERT in the mrc formulation (TINY_CONFIG's budgets)."""
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(results_dir)
    cfg["grid"].update(methods=[method], tasks=["bbc-topic"], seeds=[8])
    cfg = check_config(cfg)
    [result] = train_first_group(cfg, None)
    assert result["status"] == "ok", result["error"]
    return result_path(cfg, Cell(method, "tiny-bert", "bbc-topic", 8, 8))


@pytest.fixture(scope="module")
def refused_cells(tmp_path_factory, t5_dir):
    """Finished cells that cannot be peft adapters, each with the words its refusal must say."""
    root = tmp_path_factory.mktemp("refused")
    mrc = bert_cell(root / "mrc", "pt")
    deep = bert_cell(root / "deep", "ptv2")
    tuned_cfg = t5_config(root / "tuned", t5_dir, method="model-tuning", epochs=1)
    [tuned] = train_first_group(tuned_cfg, None)
    assert tuned["status"] == "ok", tuned["error"]
    tuned = result_path(tuned_cfg, Cell("model-tuning", "tiny-t5-files", TASK, 4, 8))
    suffix_cfg = t5_config(root / "suffix", t5_dir, prompt_position="suffix", epochs=1)
    train_first_group(suffix_cfg, None)
    suffix = result_path(suffix_cfg, Cell("pt", "tiny-t5-files", TASK, 4, 8))
    return {"mrc": (mrc, "its mrc formulation adds the prompt to the embedding layer's output"),
            "deep": (deep, "ptv2 trains a prompt at each of 2 layers"),
            "model tuning": (tuned, "model-tuning tunes the backbone's own weights"),
            "suffix": (suffix, "its prompt_position is 'suffix'")}


@pytest.mark.parametrize("kind", ["mrc", "deep", "model tuning", "suffix"])
def test_a_cell_that_cannot_be_a_peft_adapter_is_refused_in_one_line(capsys, tmp_path, refused_cells, kind):
    cell, why = refused_cells[kind]
    code, out, err = run_cli(capsys, "export-peft", cell, "--out", tmp_path / "adapter")
    assert code == 2 and err.startswith("replicate: cell ") and "cannot be exported as a peft adapter: " in err, err
    assert why in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "adapter").exists()


def test_the_mrc_cell_keeps_its_prompt_and_span_head(refused_cells):
    """Refused as an adapter, an mrc cell still saves what it adds to the backbone, for this harness."""
    from safetensors.torch import load_file

    cell, _ = refused_cells["mrc"]
    tensors = load_file(prompt_path(cell))
    assert {k: list(v.shape) for k, v in tensors.items()} == {"prompt": [4, 32], "head": [32, 2]}
    assert json.loads(open(cell).read())["prompt_file"]["shapes"] == {"head": [32, 2], "prompt": [4, 32]}
    assert json.loads(open(refused_cells["deep"][0]).read())["prompt_file"] is None


def test_a_missing_edited_or_unmatched_cell_is_refused_in_one_line(capsys, tmp_path, pt_cell):
    _, cell_path = pt_cell
    root = tmp_path / "results"
    shutil.copytree(pt_cell[0]["results_dir"], root)
    cell = root / "cells" / "tiny-t5-files" / TASK / "shot4" / "pt" / "seed8.json"
    code, _, err = run_cli(capsys, "export-peft", root / "seed9.json", "--out", tmp_path / "a")
    assert code == 2 and err == f"replicate: {root / 'seed9.json'} does not exist"
    prompt = root / "prompts" / "tiny-t5-files" / TASK / "shot4" / "pt" / "seed8.safetensors"
    original = prompt.read_bytes()
    prompt.write_bytes(original[:-4] + bytes(4))  # another prompt than the one the result sealed
    code, _, err = run_cli(capsys, "export-peft", cell, "--out", tmp_path / "a")
    assert code == 2 and "\n" not in err
    assert err.startswith(f"replicate: prompt file {prompt}: its sha256 is not the one")
    prompt.unlink()
    code, _, err = run_cli(capsys, "export-peft", cell, "--out", tmp_path / "a")
    assert code == 2 and err.startswith(f"replicate: prompt file {prompt} of result {cell} does not exist"), err
    cell.write_text(cell.read_text().replace('"seed": 8', '"seed": 9'))
    code, _, err = run_cli(capsys, "export-peft", cell, "--out", tmp_path / "a")
    assert code == 2 and err.startswith(f"replicate: result {cell}: edited after it was written"), err
    assert not (tmp_path / "a").exists()
