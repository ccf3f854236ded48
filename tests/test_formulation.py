"""BBT's masked-LM label-word formulation (replicate/formulation.py, tasks/cloze.py): the
cloze encoding of Black-Box-Tuning's CPT loaders, the loss over label words read by the
backbone's own tied embeddings, no span head and no pre-training, no extractive cells."""

import pytest
import torch
import torch.nn.functional as F

from replicate import jobs
from replicate.backbones import BACKBONES
from replicate.config import check_config, groups
from replicate.errors import ConfigError
from replicate.formulation import ClozeEncoder, MaskedLM, TiedWordScores
from replicate.methods import METHODS
from replicate.model import SpanHead
from replicate.mrc import PROMPT_SLOT_FIRST_ID
from replicate.splits import Protocol, draw_split, resolve
from replicate.tables import NO_CELL, CellSummary
from replicate.tasks import TASKS, resolve_task

from conftest import REPO, paper_files

EXTRACTIVE = ("cmrc-2018", "cote-mfw", "drcd", "cote-bd")


@pytest.fixture(scope="module")
def cpt_tokenizer(tiny_cpt_dir):
    return BACKBONES.get("tiny-cpt").load_tokenizer(str(tiny_cpt_dir))


def pool_example(task_name, index=0):
    task = resolve_task(task_name, paper_files(task_name))
    return task, task.load_pools("").train[index]


def test_chnsent_is_encoded_as_black_box_tunings_cpt_loader(cpt_tokenizer):
    """dataloader_cpt.py:80: '<prompt> 。 <text> 。 总之很[MASK] .', label words 差 / 好."""
    task, ex = pool_example("chnsent")
    e = ClozeEncoder(cpt_tokenizer, task, 512, 3, True, 1).encode(ex)
    ids = lambda s: cpt_tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    slots = [PROMPT_SLOT_FIRST_ID + i for i in range(3)]
    assert e.input_ids == ([cpt_tokenizer.cls_token_id] + slots + ids("。") + ids(ex.text) + ids("。总之很")
                           + [cpt_tokenizer.mask_token_id] + ids(".") + [cpt_tokenizer.sep_token_id])
    assert e.input_ids[e.mask_position] == cpt_tokenizer.mask_token_id
    assert e.word_ids == ids("差") + ids("好") and e.label == ex.label
    assert e.token_type_ids == [1] * len(e.input_ids)  # CPT's all-ones token types


def test_label_words_are_read_by_their_first_token(cpt_tokenizer):
    """Amazon's 不好 and 一般 are read as 不 and 一 (dataloader_cpt.py:54 keeps labels[0])."""
    task, ex = pool_example("amazon")
    e = ClozeEncoder(cpt_tokenizer, task, 512, 3, True, 1).encode(ex)
    first = [cpt_tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("差", "不", "一", "好", "赞")]
    assert e.word_ids == first


def test_multiple_choice_lists_lettered_options_and_reads_the_letters(cpt_tokenizer):
    """C3 (dataloader_cpt.py:286-290): options as 'A、…;B、…;', label words the letters of the
    example's own options (C3 has 2 to 4)."""
    task = resolve_task("c3", paper_files("c3"))
    pools = task.load_pools("")
    enc = ClozeEncoder(cpt_tokenizer, task, 512, 2, True, 1)
    for ex in pools.train[:6]:
        e = enc.encode(ex)
        letters = [cpt_tokenizer("ABCD"[i], add_special_tokens=False)["input_ids"][0] for i in range(len(ex.options))]
        assert e.word_ids == letters and e.label == ex.label
        assert "A、" + ex.options[0] + ";" in e.text and e.text.endswith("答案是[MASK]。")


def test_the_longest_text_gives_way_and_the_mask_stays(cpt_tokenizer):
    task, ex = pool_example("ocnli")
    long = type(ex)(id="x", text=ex.text * 20, text_b=ex.text_b, label=ex.label)
    e = ClozeEncoder(cpt_tokenizer, task, 64, 4, True, 1).encode(long)
    assert len(e.input_ids) == 64 and e.input_ids[e.mask_position] == cpt_tokenizer.mask_token_id
    assert e.input_ids[-1] == cpt_tokenizer.sep_token_id


def tiny_bbt(name="bbt", **overrides):
    spec = BACKBONES.get("tiny-bert")
    method = METHODS.get(name)
    cfg = method.make_config({"max_length": 48, "prompt_length": 3, "intrinsic_dim": 8, "popsize": 4, **overrides})
    backbone, tok = spec.load()
    return spec, method, cfg, backbone, tok


def test_mlm_loss_is_cross_entropy_over_the_tied_embedding_scores_at_the_mask():
    spec, method, cfg, backbone, tok = tiny_bbt()
    task = TASKS.get("bbc-topic")
    form = method.formulation(cfg, task)
    assert isinstance(form, MaskedLM)
    enc = method.encoder(tok, task, cfg, spec)
    items = [enc.encode(ex) for ex in task.load_pools("").train[:6]]
    model = method.build(backbone, spec, tok, cfg, [8])
    model.eval()
    prompt = torch.randn(1, 1, 3, spec.d_model, generator=torch.Generator().manual_seed(0))
    model.prompt.rows = prompt.expand(len(items), -1, -1, -1)
    batch = form.collate(items, list(range(len(items))), tok.pad_token_id)
    with torch.no_grad():
        scores = form.forward(model, batch)
        losses = form.losses(scores, batch)
        # by hand: the prompt added after [CLS] to the embedding output, the last hidden state
        # at [MASK] dotted with the input embeddings of the label words' first tokens
        for i, e in enumerate(items):
            ids = torch.tensor([e.input_ids])
            emb = backbone.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
            emb[:, 1:4] += prompt[0, 0]
            hidden = emb
            for layer in backbone.encoder.layer:
                out = layer(hidden)
                hidden = out[0] if isinstance(out, tuple) else out
            logits = hidden[0, e.mask_position] @ backbone.get_input_embeddings().weight[e.word_ids].T
            assert torch.allclose(scores[i], logits, atol=1e-4)
            want = F.cross_entropy(logits[None], torch.tensor([e.label]))
            assert losses[i].item() == pytest.approx(want.item(), abs=1e-4)
    assert form.predictions(scores, batch) == scores.argmax(1).tolist()


def test_bbt_reads_the_backbones_own_embeddings_and_no_span_head():
    spec, method, cfg, backbone, tok = tiny_bbt()
    model = method.build(backbone, spec, tok, cfg, [8, 13])
    assert isinstance(model.head, TiedWordScores) and not isinstance(model.head, SpanHead)
    assert model.head.weight is backbone.get_input_embeddings().weight  # tied, not a copy
    assert not any(True for _ in model.head.parameters())  # nothing of its own
    with pytest.raises(ValueError, match="reads no pre-training"):
        method.build(backbone, spec, tok, cfg, [8], None, {"head": torch.zeros(spec.d_model, 2)})


@pytest.mark.parametrize("name", ["bbt", "bbtv2"])
@pytest.mark.parametrize("overrides", [{"pretraining": "mp2-shallow"},
                                       {"pretraining": "mp2-deep", "formulation": "mrc"}])
def test_bbt_naming_a_pretraining_is_one_clear_config_error(name, overrides, tiny_config):
    tiny_config["grid"]["methods"] = [name]
    tiny_config["methods"] = {name: {"prompt_length": 4, "budget": 16, "popsize": 4, **overrides}}
    with pytest.raises(ConfigError, match=f"config methods/{name}/pretraining: .*(starts from the backbone alone|"
                                          "starts from no pre-training)") as err:
        check_config(tiny_config)
    assert "\n" not in str(err.value)


def test_mp2_black_box_keeps_the_mrc_formulation_and_its_pretraining():
    for name in ("mp2-shallow-black-box", "mp2-deep-black-box"):
        cfg = METHODS.get(name).make_config()
        assert cfg.formulation == "mrc" and cfg.pretraining
    with pytest.raises(ConfigError, match="mlm formulation"):
        METHODS.get("mp2-shallow-black-box").make_config({"formulation": "mlm"})


def test_bbt_has_no_cells_for_extractive_tasks_in_the_paper_config():
    from replicate.config import load_config

    cfg = load_config(str(REPO / "config" / "paper.yaml"))
    by_method = {}
    for g in groups(cfg):
        by_method.setdefault(g.method, set()).add(g.task)
    for name in ("bbt", "bbtv2"):
        method = METHODS.get(name)
        mcfg = method.make_config(cfg["methods"][name])
        assert mcfg.formulation == "mlm" and mcfg.pretraining is None
        assert by_method[name] == set(cfg["grid"]["tasks"]) - set(EXTRACTIVE)
        assert all(method.pretraining(mcfg, TASKS.get(t)) is None for t in by_method[name])
    assert set(EXTRACTIVE) <= by_method["mp2-shallow-black-box"]  # MP2 keeps them (MRC)
    assert CellSummary(n_expected=0).text() == NO_CELL == "–"


@pytest.mark.parametrize("task_name", ["cmnli", "c3"])
def test_test_examples_are_cloze_encoded_as_themselves_when_ids_collide(task_name, cpt_tokenizer):
    """The new data path goes through the same (pool, id)-keyed cache: a test example whose
    id is also a training id is encoded from the test pool, never from the training one."""
    task = resolve_task(task_name, paper_files(task_name))
    pools = task.load_pools("")
    encoder = ClozeEncoder(cpt_tokenizer, task, 512, 4, True, 1)
    cache: dict = {}
    collided = False
    for seed in (8, 13):
        parts = resolve(draw_split(task, pools, 32, seed, Protocol()), pools)
        train, dev, test = jobs.encode_parts(encoder, parts, cache)
        collided |= bool({ex.id for ex in parts["train"] + parts["dev"]} & {ex.id for ex in parts["test"]})
        for name, encoded in (("train", train), ("dev", dev), ("test", test)):
            assert [e.input_ids for e in encoded] == [encoder.encode(ex).input_ids for ex in parts[name]]
            assert [e.label for e in encoded] == [ex.label for ex in parts[name]]
    assert collided  # the fixtures' ids do collide across pools


def test_table3_says_how_bbt_reads_its_answers():
    """The regenerated table's header says what BBT's rows are (no MP2 span head), and that on
    the embedded backbone the masked-LM head is a stand-in; their extractive cells print –."""
    from replicate.config import load_config
    from replicate.tables import build_table, to_markdown

    for path, head in (("paper.yaml", "CPT's own masked-LM head"), ("config.yaml", "a stand-in for a masked-LM head")):
        table = build_table(load_config(str(REPO / "config" / path)), "mp2", "3")
        line = [h for h in table.header if h.startswith("BBT and BBTv2: ")]
        assert len(line) == 1 and head in line[0] and "no pre-training" in line[0]
    bbt = [row for row in to_markdown(table).splitlines() if row.startswith("| BBT |")]
    assert bbt and all(" – |" not in row for row in bbt)  # the embedded grid has no extractive task
    paper = to_markdown(build_table(load_config(str(REPO / "config" / "paper.yaml")), "mp2", "3"))
    assert all(row.count("| – |") == 2 for row in paper.splitlines() if row.startswith("| BBT"))
