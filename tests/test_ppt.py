"""PPT and SPoT: the document tasks follow PPT's rules and never show a test article, the
task formats lay tasks out as PPT does, a single-prompt pre-training resumes to the same
checkpoint, and every cell starts from the checkpoint its provenance names."""

import copy
import json
from collections import Counter

import pytest
import torch

from conftest import FIXTURES, TINY_CONFIG, train_first_group
from replicate.config import check_config, groups, load_config, pretrain_settings, pretrainings_of
from replicate.errors import ConfigError
from replicate.formats import LETTERS, in_format, ppt_format
from replicate.jobs import CHECKPOINT_FILE, RESUME_FILE, SUMMARY_FILE, load_pretrained, pretrain_job
from replicate.methods import METHODS
from replicate.pretrain import held_out_texts, make_pretrain_config, upstream_data, upstream_pools
from replicate.splits import Protocol
from replicate.tasks import TASKS, Example
from replicate.tasks.documents import UNIFIED_COMPOSITION, ppt_mcc, ppt_spc, ppt_unified
from replicate.tasks.embedded import _bbc_pools
from replicate.tasks.upstream import _pieces

REPO = FIXTURES.parent.parent


def _documents(n=8, length=7):
    """Documents of distinct 8-word sentences (eligible: 6-25 words), ids as BBC's."""
    return [(f"business/{d:03d}", [f"d{d}s{i} is sentence {i} of document {d} here" for i in range(length)])
            for d in range(n)]


def test_spc_rule_labels_adjacent_same_document_and_other_document():
    docs = _documents()
    where = {s: (did, i) for did, sentences in docs for i, s in enumerate(sentences)}
    examples = ppt_spc("t-spc", docs, per_document=5)
    assert len(examples) == 40 and {ex.id for ex in examples} >= {"business/000", "business/000#4"}
    directions = Counter()
    for ex in examples:
        (da, ia), (db, ib) = where[ex.text], where[ex.text_b]
        if ex.label == 2:  # the next or the previous sentence (the authors' code: p = i + 1 or i - 1)
            assert db == da and abs(ib - ia) == 1
            directions[ib - ia] += 1
        elif ex.label == 1:
            assert db == da and abs(ib - ia) > 1
        else:
            assert db != da
    assert set(Counter(ex.label for ex in examples)) == {0, 1, 2} and set(directions) == {-1, 1}
    assert TASKS.get("bbc-ppt-spc").labels == ("no", "maybe", "yes")  # PPT eq 3, in label order


def _check_choice(ex, docs, where, same):
    did, i = where[ex.text]
    d = int(did.split("/")[1][:3])
    truth = ex.options[ex.label]
    assert truth in {docs[d][1][j] for j in (i - 1, i + 1) if 0 <= j < len(docs[d][1])}
    mine = [o for o in ex.options if o.startswith(f"d{d}s")]
    assert len(mine) == 1 + same  # the adjacent one and the same-document ones
    assert all(o in where for o in ex.options) and len(set(ex.options)) == len(ex.options)  # whole sentences


def test_mcc_and_unified_rules_follow_the_authors_composition():
    docs = _documents(n=20, length=9)
    where = {s: (did, i) for did, sentences in docs for i, s in enumerate(sentences)}
    mcc = ppt_mcc("t-mcc", docs)
    assert len(mcc) == 20
    for ex in mcc:
        assert len(ex.options) == 6
        _check_choice(ex, docs, where, 1)
    sizes = Counter()
    for ex in ppt_unified("t-unified", docs, per_document=10):
        n = len(ex.options)
        sizes[n] += 1
        same, others = UNIFIED_COMPOSITION[n]
        assert n == 1 + same + sum(others)
        _check_choice(ex, docs, where, same)
    assert set(sizes) == set(range(2, 17))


@pytest.mark.slow
def test_document_tasks_show_nothing_of_a_test_article_or_a_downstream_test_pool():
    """The PPT tasks' train pools hold no sentence or title of a BBC test article (every BBC
    task's test pool is made of those), and what pre-training takes from them holds no text
    of any downstream test pool or UNSEEN DATA few-shot pool (bbc-topic's reserve articles
    are BBC train articles: ``upstream_data`` drops them)."""
    train_articles, test_articles = _bbc_pools()
    test_sentences = {t for _, _, title, body in test_articles for t in [title, *_pieces(body)]}
    protocol = Protocol(downstream_reserve=0.2)
    held = held_out_texts("embedded", str(FIXTURES), protocol)
    train_ids = {aid for aid, *_ in train_articles}
    cfg = make_pretrain_config("ppt", {"tasks": ["bbc-ppt-spc"], "prompt": "single", "train_cap": 1500})
    for name in ("bbc-ppt-spc", "bbc-ppt-mcc", "bbc-ppt-unified"):
        task = TASKS.get(name)
        pools = task.load_pools(str(FIXTURES))
        assert len(pools.train) > 3000 and pools.test
        strings = lambda ex: [t for t in (ex.text, ex.text_b, *(ex.options or ())) if t is not None]  # noqa: E731
        for ex in pools.train:
            assert ex.id.split("#")[0] in train_ids
            assert not set(strings(ex)) & test_sentences, (name, ex.id)
        # the check is not vacuous: some examples of the whole pool show a held-out text
        assert any(any(t in held for t in strings(ex)) for ex in pools.train[:1500])
        # pre-training draws from the documents without held-out texts, so few draws are lost
        # after (a cut candidate can still occur inside a held-out text) and none shows one
        kept = upstream_pools(task, str(FIXTURES), held)
        lost = [ex for ex in kept.train[:1500] if any(t in held for t in strings(ex))]
        assert len(lost) < 0.1 * 1500, (name, len(lost))
        train, dev = upstream_data(task, kept, protocol, held, cfg)
        assert len(train) > 1250 and not [ex for ex in train + dev if any(t in held for t in strings(ex))]
        if name == "bbc-ppt-unified":  # every number of candidates survives the check
            assert {len(ex.options) for ex in train} == set(range(2, 17))


def test_mcc_layout_lists_the_candidates_and_answers_with_letters():
    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder

    tiny_tokenizer = BACKBONES.get("tiny-bert").load_tokenizer()
    task = TASKS.get("sentence-polarity")
    lettered = in_format(task, "mcc")
    ex = Example(id="r7", text="a gripping film", label=1)
    text, _ = lettered.template.fill(ex)
    assert text.endswith(f"A. {task.labels[0]} B. {task.labels[1]} Answer is ")
    assert lettered.options_of(ex) == ("A", "B") and lettered.name == task.name
    enc = MRCEncoder(tiny_tokenizer, lettered, 64, 3, True).encode(ex)
    assert enc.label == 1 and len(enc.option_starts) == 2
    choice = in_format(TASKS.get("bbc-next-sentence-choice"), "mcc", "hybrid")
    mc = Example(id="x", text="q", options=("one", "two", "three"), label=2)
    assert choice.template.fill(mc)[0] == "We ask q ? A. one B. two C. three The answer is "
    assert choice.options_of(mc) == tuple(LETTERS[:3])
    assert in_format(task, "options", "hybrid").template.fill(ex)[0] == "a gripping film . It was "
    pair = in_format(TASKS.get("bbc-same-article"), "options", "hybrid")
    assert pair.template.fill(Example(id="p", text="s1", text_b="s2", label=0))[0] == "Question: s1 ? s2 "
    quote = TASKS.get("bbc-quote-speaker")
    assert in_format(quote, "mcc", "hybrid") is quote and ppt_format(quote) is None
    assert [ppt_format(TASKS.get(n)) for n in ("sentence-polarity", "bbc-same-article", "bbc-title-choice")] == [
        "ssc", "spc", "mcc"]


def test_mcc_layout_refuses_more_labels_than_letters():
    many = TASKS.get("tnews")
    assert many.num_labels == 15
    in_format(many, "mcc")
    from dataclasses import replace

    with pytest.raises(ConfigError, match="16 option letters"):
        in_format(replace(many, labels=tuple(f"l{i}" for i in range(17))), "mcc")


def single_config(tmp_path, steps=6, layout="mcc", tasks=("bbc-ppt-unified",), method="ppt-unified",
                  prompt="single", name=None):
    name = name or method
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["protocol"]["downstream_reserve"] = 0.2
    cfg["grid"]["methods"] = [method]
    cfg["pretraining"] = {name: {
        "prompt": prompt, "layout": layout, "tasks": list(tasks), "prompt_length": 3, "steps": steps,
        "batch_size": 2, "prompt_lr": 0.03, "eval_every": 3, "save_every": 2, "dev_cap": 4, "train_cap": 12,
        "max_length": 96, "init_vocab_size": 50}}
    cfg["methods"] = {method: {"epochs": 2, "max_length": 64, "prompt_length": 3, "batch_size": 4,
                               "pretraining": name, "layout": layout}}
    return check_config(cfg)


@pytest.mark.slow
def test_a_killed_single_prompt_pretraining_resumes_to_the_same_checkpoint(tmp_path):
    cfg = single_config(tmp_path)
    settings = pretrain_settings(cfg, "ppt-unified", "tiny-bert")
    whole = pretrain_job(settings, str(tmp_path / "whole"), str(FIXTURES), device="cpu")
    assert pretrain_job(settings, str(tmp_path / "killed"), str(FIXTURES), device="cpu", stop_after=3) is None
    assert torch.load(tmp_path / "killed" / RESUME_FILE, weights_only=False)["progress"]["step"] == 2
    resumed = pretrain_job(settings, str(tmp_path / "killed"), str(FIXTURES), device="cpu")
    a = torch.load(tmp_path / "whole" / CHECKPOINT_FILE, weights_only=False)
    b = torch.load(tmp_path / "killed" / CHECKPOINT_FILE, weights_only=False)
    for key in ("prompt_tensor", "head"):
        assert torch.equal(a[key], b[key]), key
    assert a["prompt"] == "single" and a["layout"] == "mcc" and tuple(a["prompt_tensor"].shape)[1] == 3
    assert resumed["dev_curve"] == whole["dev_curve"]
    summary = json.loads((tmp_path / "whole" / SUMMARY_FILE).read_text())
    assert summary["routers"] == [] and summary["tasks"][0]["name"] == "bbc-ppt-unified"


def test_cells_start_from_the_pretrained_prompt_their_provenance_names(tmp_path):
    cfg = single_config(tmp_path, layout="options", tasks=("bbc-title-topic", "tweet-source"), method="spot")
    settings = pretrain_settings(cfg, "spot", "tiny-bert")
    summary = pretrain_job(settings, str(tmp_path / "pre"), str(FIXTURES), device="cpu")
    checkpoint = str(tmp_path / "pre" / CHECKPOINT_FILE)
    tensors, _ = load_pretrained({"pretraining": settings}, checkpoint)
    method = METHODS.get("spot")
    mcfg = method.make_config(cfg["methods"]["spot"])
    from replicate.backbones import BACKBONES

    spec = BACKBONES.get("tiny-bert")
    backbone, tokenizer = spec.load()
    model = method.build(backbone, spec, tokenizer, mcfg, [8, 13], pretrained=tensors)
    for s in range(2):  # every seed starts from the source prompt and head
        assert torch.equal(model.prompt.weight[s], tensors["prompt"].float())
        assert torch.equal(model.head.weight[s], tensors["head"].float())
    with pytest.raises(ConfigError, match="needs"):
        method.build(backbone, spec, tokenizer, method.make_config({**cfg["methods"]["spot"], "prompt_length": 4}),
                     [8], pretrained=tensors)
    # through the train job: the result names the checkpoint's hash
    [result] = train_first_group(cfg, checkpoint, cfg["grid"]["seeds"][:1], [str(tmp_path / "cell.json")])
    assert result["status"] == "ok"
    assert result["provenance"]["pretrained_checkpoint"]["sha256"] == summary["checkpoint"]["sha256"]


def test_method_and_pretraining_must_agree_in_one_line(tmp_path):
    cfg = copy.deepcopy(single_config(tmp_path))
    cfg["pretraining"]["ppt-unified"]["layout"] = "options"
    with pytest.raises(ConfigError, match="has prompt 'single', layout 'options', prompt_length 3; the method needs "
                                          "prompt 'single', layout 'mcc', prompt_length 3"):
        check_config(cfg)
    cfg = copy.deepcopy(single_config(tmp_path))
    cfg["pretraining"]["ppt-unified"]["prompt"] = "shallow"
    with pytest.raises(ConfigError, match="has prompt 'shallow'"):
        check_config(cfg)
    assert make_pretrain_config("x", {"tasks": ["bbc-ppt-spc"], "prompt": "single"}).layout == "options"
    with pytest.raises(ConfigError, match="layout"):
        make_pretrain_config("x", {"tasks": ["bbc-ppt-spc"], "layout": "letters"})


def test_per_format_ppt_takes_the_prompt_of_each_task_format_and_no_ssc_task():
    cfg = load_config(str(REPO / "config" / "paper.yaml"))
    assert pretrainings_of(cfg)["ppt"] == ["ppt-spc", "ppt-mcc"]
    taken = {g.task for g in groups(cfg) if g.method == "ppt"}
    assert taken == {"bq", "cmnli", "ocnli", "lcqmc", "ccpm", "c3"}  # SPC and MCC tasks; no SSC, no MRC
    method = METHODS.get("ppt")
    mcfg = method.make_config(cfg["methods"]["ppt"])
    assert method.pretraining(mcfg, TASKS.get("ccpm")) == "ppt-mcc"
    assert method.pretraining(mcfg, TASKS.get("lcqmc")) == "ppt-spc"
    assert method.task_view(TASKS.get("ccpm"), mcfg).options_of(Example(id="0", text="q", options=("a", "b"),
                                                                        label=0)) == ("一", "二")
    with pytest.raises(ConfigError, match="sentiment annotator"):
        method.pretraining(mcfg, TASKS.get("chnsent"))
    assert {g.task for g in groups(cfg) if g.method == "ppt-unified"} == set(cfg["grid"]["tasks"])
    embedded = load_config(str(REPO / "config" / "config.yaml"))
    assert set(pretrainings_of(embedded)) >= {"ppt-unified", "spot"}
    assert not [g for g in groups(embedded) if g.method in ("ppt", "ppt-hybrid")]  # single-sentence tasks only
    formats = load_config(str(REPO / "config" / "ppt-formats.yaml"))  # the embedded pair tasks
    assert pretrainings_of(formats)["ppt"] == ["ppt-spc"] and len(groups(formats)) == 8


def test_similarities_are_spots_two_measures():
    from replicate.methods.spot import similarities

    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sources = torch.stack([target, -target, torch.tensor([[1.0, 0.0], [1.0, 0.0]])])
    avg = similarities(target, sources, "average-tokens")
    assert torch.allclose(avg, torch.tensor([1.0, -1.0, 2 ** -0.5]), atol=1e-6)
    # per token pair: (1 + 0 + 0 + 1) / 4 for itself; the third source's tokens match one of two
    per = similarities(target, sources, "per-token")
    assert torch.allclose(per, torch.tensor([0.5, -0.5, 0.5]), atol=1e-6)


def test_retrieval_takes_each_seeds_nearest_source_and_records_the_ranking(tmp_path):
    from replicate.methods.spot import similarities

    cfg = single_config(tmp_path, layout="options", tasks=("bbc-title-topic", "tweet-source", "bbc-ppt-spc"),
                        method="spot-retrieval", prompt="per-task", name="spot-sources")
    cfg["methods"]["spot-retrieval"].update(probe_epochs=2, epochs=2)
    cfg = check_config(cfg)
    settings = pretrain_settings(cfg, "spot-sources", "tiny-bert")
    summary = pretrain_job(settings, str(tmp_path / "pre"), str(FIXTURES), device="cpu")
    checkpoint = str(tmp_path / "pre" / CHECKPOINT_FILE)
    tensors, _ = load_pretrained({"pretraining": settings}, checkpoint)
    assert tuple(tensors["source_prompts"].shape[:2]) == (3, 3)
    # the three source prompts differ (each trained on its own task from its own init)
    assert not torch.equal(tensors["source_prompts"][0], tensors["source_prompts"][1])
    method = METHODS.get("spot-retrieval")
    mcfg = method.make_config(cfg["methods"]["spot-retrieval"])
    from replicate.backbones import BACKBONES

    spec = BACKBONES.get("tiny-bert")
    backbone, tokenizer = spec.load()
    model = method.build(backbone, spec, tokenizer, mcfg, [8, 13], init_tokens=list(range(1000, 1100)),
                         pretrained=tensors)
    probe = method.stages(model, mcfg)[0]
    assert probe.name == "probe" and not probe.selects
    before = model.prompt.weight.detach().clone()
    picked = probe.leave([0, 1])
    for s in range(2):
        sims = similarities(before[s], tensors["source_prompts"], "average-tokens")
        best = int(sims.argmax())
        assert picked[s]["retrieved"] == tensors["tasks"][best]
        assert [v for _, v in picked[s]["similarity"]] == sorted([v for _, v in picked[s]["similarity"]],
                                                                 reverse=True)
        assert torch.equal(model.prompt.weight[s], tensors["source_prompts"][best])
        assert torch.equal(model.head.weight[s], tensors["head"].float())
    # through the train job: the probe is never the tested checkpoint, and the result says what it took
    results = train_first_group(cfg, checkpoint)
    for r in results:
        probe_record, transfer = r["stages"]
        assert probe_record["retrieved"] in tensors["tasks"] and len(probe_record["similarity"]) == 3
        assert "best_dev" not in probe_record and transfer["best_epoch"] > 2
        assert [e for e, _ in r["dev"]["curve"]] == [3, 4]
        assert r["provenance"]["pretrained_checkpoint"]["sha256"] == summary["checkpoint"]["sha256"]
    # the report reads the same cells
    from replicate.retrieval import report_rows

    [row] = [x for x in report_rows(cfg) if x["method"] == "spot-retrieval" and x["task"] == groups(cfg)[0].task]
    assert row["n"] == "2" and sum(int(p.split(" x")[1]) for p in row["retrieved"].split("; ")) == 2
    assert row["top3"].count(";") == 2


def test_max_length_is_checked_in_the_methods_own_layout(tmp_path):
    """The MCC layout lists the label words inside the text: a max_length that fits PT's
    layout of a 5-label task can be too short for PT (MC)'s, and that is one line before
    any job."""
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["grid"]["methods"] = ["pt", "pt-mc"]
    cfg["grid"]["tasks"] = ["bbc-topic"]
    for need in range(20, 80):
        cfg["methods"] = {m: {"max_length": need, "prompt_length": 4} for m in ("pt", "pt-mc")}
        try:
            check_config(copy.deepcopy(cfg))
            break
        except ConfigError as e:
            assert "config methods/" in str(e)
            failing = str(e)
    assert failing.startswith("config methods/pt-mc/max_length")


def test_the_data_node_gives_the_same_checkpoint_and_refuses_other_data(tmp_path):
    """A pre-training that reads its data node ends with the same tensors as one that builds
    the same data itself; a data node of other settings, or an edited file, is refused."""
    import gzip

    from replicate.jobs import pretrain_data_job
    from replicate.pretrain import data_settings_of

    cfg = single_config(tmp_path, layout="options", tasks=("bbc-title-topic", "tweet-source"), method="spot", steps=4)
    settings = pretrain_settings(cfg, "spot", "tiny-bert")
    manifest = pretrain_data_job(data_settings_of(settings), str(tmp_path / "data"), str(FIXTURES))
    assert [t["name"] for t in manifest["tasks"]] == ["bbc-title-topic", "tweet-source"]
    assert all(0 < t["train"] <= 12 for t in manifest["tasks"])  # the train cap, less held-out texts
    built = pretrain_job(settings, str(tmp_path / "built"), str(FIXTURES), device="cpu")
    read = pretrain_job(settings, str(tmp_path / "read"), str(FIXTURES), device="cpu", data_path=str(tmp_path / "data"))
    a = torch.load(tmp_path / "built" / CHECKPOINT_FILE, weights_only=False)
    b = torch.load(tmp_path / "read" / CHECKPOINT_FILE, weights_only=False)
    assert torch.equal(a["prompt_tensor"], b["prompt_tensor"]) and built["dev_curve"] == read["dev_curve"]
    assert read["data"]["sha256"] == manifest["sha256"]
    other = pretrain_settings(single_config(tmp_path, layout="options", tasks=("bbc-title-topic",), method="spot"),
                              "spot", "tiny-bert")
    with pytest.raises(ConfigError, match="other settings"):
        pretrain_job(other, str(tmp_path / "x"), str(FIXTURES), device="cpu", data_path=str(tmp_path / "data"))
    with gzip.open(tmp_path / "data" / "examples.json.gz", "wb") as f:
        f.write(b"{}")
    with pytest.raises(ConfigError, match="sha256"):
        pretrain_job(settings, str(tmp_path / "y"), str(FIXTURES), device="cpu", data_path=str(tmp_path / "data"))


def test_the_paper_corpus_path_reads_local_jsonl_and_leaves_out_held_out_documents(tmp_path):
    """wudao-ppt-spc from a local jsonl in WuDao's schema: Chinese sentences split at 。！？,
    examples joined back without spaces, a document showing a held-out sentence absent."""
    from replicate.pretrain import HeldOut
    from replicate.tasks import resolve_task

    rows = []
    for d in range(30):
        sentences = [f"第{d}篇文章的第{i}句话讲的是一件事情。" for i in range(6)]
        rows.append({"id": d, "uniqueKey": f"k{d}", "title": f"标题{d}", "dataType": "新闻",
                     "content": "".join(sentences)})
    path = tmp_path / "wudao.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    task = resolve_task("wudao-ppt-spc", {"wudao-ppt-spc": {"train": str(path)}})
    held = HeldOut({"第3篇文章的第2句话讲的是一件事情。"}, substrings=False)
    pools = task.source.load(str(tmp_path), held)
    texts = [t for ex in pools.train + pools.test for t in (ex.text, ex.text_b)]
    assert texts and all(" " not in t and t.endswith("。") for t in texts)
    assert not [t for t in texts if t.startswith("第3篇")]
    assert [t for t in texts if t.startswith("第4篇")]  # the other documents are there


# ---------------------------------------------------------------------------------------
# PPT's inputs whole: no candidate of a lettered listing is ever cut

def _listing_losses(encoder, enc, ex):
    """Indices of ``ex``'s candidates whose letter, followed by the candidate's first token,
    is not in the encoded input before the options (the listing "A. <c> B. <c> ...")."""
    template = encoder.task.template
    body = enc.input_ids[:enc.option_starts[0]]
    candidates = ex.options if ex.options is not None else template.labels
    missing = []
    for i, c in enumerate(candidates):
        head = template.item.partition("{text}")[0].format(letter=template.letters[i])
        want = encoder._tokens(head)[0] + encoder._tokens(c)[0][:1]
        if not any(body[j:j + len(want)] == want for j in range(len(body))):
            missing.append(i)
    return missing


EN_WORDS = ("river market school garden window doctor letter summer forest engine island music village "
            "pocket silver travel winter bridge castle camera").split()
ZH_WORDS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"


def _configs():
    return {name: load_config(str(REPO / "config" / f"{name}.yaml")) for name in ("config", "ppt-formats", "paper")}


def _lettered_pretrainings(cfg):
    """(name, pre-training config, task view) of every pre-training whose tasks list lettered candidates."""
    from replicate.pretrain import make_pretrain_config

    for name, values in cfg.get("pretraining", {}).items():
        pcfg = make_pretrain_config(name, values)
        for t in pcfg.tasks:
            view = in_format(TASKS.get(t), pcfg.layout)
            if hasattr(view.template, "letters"):
                yield name, pcfg, view


@pytest.mark.slow
def test_no_embedded_ppt_pretraining_draw_loses_a_candidate_at_the_configured_length():
    """Every draw of the embedded configs' lettered pre-training tasks (Unified: 2-16
    candidates, MCC: 6), encoded with the grid backbone's tokenizer at the pre-training's
    max_length and prompt slots, shows every candidate's letter and first token, or does
    not fit and is dropped (TooLong: few, and every option count keeps draws). Before the
    fix, 419 of 2,166 Unified pre-training draws (every option count from 13 up) and 436 of
    3,921 MCC draws lost candidates."""
    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder, TooLong

    checked = set()
    for cfg_name, cfg in _configs().items():
        if cfg["setup"] != "embedded":
            continue
        spec = BACKBONES.get(cfg["grid"]["backbone"])
        tokenizer = spec.load_tokenizer()
        for name, pcfg, view in _lettered_pretrainings(cfg):
            if (view.name, pcfg.max_length, pcfg.prompt_length) in checked:
                continue
            checked.add((view.name, pcfg.max_length, pcfg.prompt_length))
            encoder = MRCEncoder(tokenizer, view, pcfg.max_length, pcfg.prompt_length, spec.uses_cls,
                                 spec.token_type)
            pools = view.load_pools(str(FIXTURES))
            lost, dropped, kept_n = [], 0, Counter()
            for ex in pools.train + pools.test:
                try:
                    enc = encoder.encode(ex)
                except TooLong:
                    dropped += 1
                    continue
                assert len(enc.input_ids) <= pcfg.max_length
                kept_n[len(ex.options)] += 1
                if _listing_losses(encoder, enc, ex):
                    lost.append(ex.id)
            total = len(pools.train) + len(pools.test)
            assert not lost, (cfg_name, name, view.name, len(lost), total)
            assert dropped < 0.1 * total, (view.name, dropped, total)
            assert set(kept_n) == set(view.extra["candidate_limits"]), (view.name, sorted(kept_n))
    assert {v for v, _, _ in checked} == {"bbc-ppt-unified", "bbc-ppt-mcc"}


@pytest.mark.slow
def test_every_option_count_fits_the_configured_length_of_every_config(tiny_cpt_dir):
    """Every PPT input of the three configs keeps its candidates at the configured length:
    a synthetic draw of every option count of every lettered pre-training task (long query,
    long candidates; the paper config's WuDao tasks with CPT's tokenizer layout), and every
    downstream group whose layout lists candidates in the text (classification tasks' label
    words after a long text; the paper's multiple-choice fixtures)."""
    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder

    from conftest import paper_files

    seen = Counter()
    for cfg_name, cfg in _configs().items():
        spec = BACKBONES.get(cfg["grid"]["backbone"])
        tokenizer = (BACKBONES.get("tiny-cpt").load_tokenizer(str(tiny_cpt_dir)) if spec.loader == "cpt"
                     else spec.load_tokenizer())
        zh = cfg["setup"] == "paper"
        words = ZH_WORDS if zh else EN_WORDS
        word = lambda i: words[i % len(words)]  # noqa: E731
        for name, pcfg, view in _lettered_pretrainings(cfg):
            encoder = MRCEncoder(tokenizer, view, pcfg.max_length, pcfg.prompt_length, spec.uses_cls,
                                 spec.token_type)
            sep = "" if zh else " "
            for n in sorted(view.extra["candidate_limits"]):
                # distinct first tokens (a cut answer must not read as another candidate)
                options = tuple(sep.join([word(i)] + [word(i + k) for k in range(40)]) for i in range(n))
                ex = Example(id=f"n{n}", text=sep.join(word(k) for k in range(300)), options=options, label=n - 1)
                enc = encoder.encode(ex)
                assert len(enc.input_ids) <= pcfg.max_length
                assert not _listing_losses(encoder, enc, ex), (cfg_name, name, n)
                seen[cfg_name] += 1
        files = paper_files("c3", "ccpm") if zh else {}
        for g in groups(cfg):
            method = METHODS.get(g.method)
            mcfg = method.make_config(cfg["methods"].get(g.method))
            view = method.task_view(TASKS.get(g.task), mcfg)
            if not hasattr(view.template, "letters"):
                continue
            encoder = MRCEncoder(tokenizer, view, mcfg.max_length, method.prompt_length(mcfg), spec.uses_cls,
                                 spec.token_type)
            if view.kind == "multiple-choice":
                from replicate.tasks import resolve_task

                pools = resolve_task(g.task, files).load_pools("")
                examples = [replace_text(ex, 600) for ex in pools.train + pools.test]
            else:
                examples = [Example(id="long", text="很长" * 600 if zh else "long " * 600,
                                    text_b=("很长" * 600 if zh else "long " * 600) if "{b}" in view.template.text
                                    else None, label=0)]
            for ex in examples:
                enc = encoder.encode(ex)
                assert len(enc.input_ids) <= mcfg.max_length
                assert not _listing_losses(encoder, enc, ex), (cfg_name, g.method, g.task, ex.id)
            seen[f"{cfg_name} downstream"] += 1
    assert seen["config"] == 15 and seen["ppt-formats"] == 15 + 1 and seen["paper"] == 15 + 1
    assert seen["config downstream"] and seen["paper downstream"]


def replace_text(ex, times):
    """``ex`` with its text repeated ``times`` times (too long for any max_length)."""
    from dataclasses import replace

    return replace(ex, text=ex.text * times)


def test_a_max_length_that_cannot_hold_ppt_candidates_is_refused_in_one_line(tmp_path):
    """The length check covers pre-training tasks: a pre-training max_length that cannot give
    each of Unified PPT's 16 candidates a token (and the query one) is one ConfigError line,
    and PPT's lettered pre-training tasks refuse the options layout."""
    cfg = copy.deepcopy(single_config(tmp_path))
    cfg["pretraining"]["ppt-unified"]["max_length"] = 48
    with pytest.raises(ConfigError, match=r"^config pretraining/ppt-unified/max_length: 48 cannot hold task "
                                          r"bbc-ppt-unified's \d+ candidates") as e:
        check_config(cfg)
    assert "\n" not in str(e.value)
    cfg["pretraining"]["ppt-unified"]["max_length"] = 96
    check_config(copy.deepcopy(cfg))
    cfg["pretraining"]["other"] = {**cfg["pretraining"]["ppt-unified"], "layout": "options", "tasks": ["bbc-ppt-mcc"]}
    with pytest.raises(ConfigError, match="config pretraining/other/layout: task bbc-ppt-mcc lists its candidates"):
        check_config(cfg)


def test_pretraining_drops_the_draws_that_do_not_fit_with_a_count():
    """A draw whose cut answer reads as another candidate is dropped before pre-training,
    and the log says how many of how many."""
    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder
    from replicate.pretrain import fitting_data

    spec = BACKBONES.get("tiny-bert")
    tokenizer = spec.load_tokenizer()
    view = in_format(TASKS.get("bbc-ppt-unified"), "mcc")
    length = next(m for m in range(10, 200)
                  if MRCEncoder(tokenizer, view, m, 3, spec.uses_cls).listing_room(2)[0] == 1)
    encoder = MRCEncoder(tokenizer, view, length, 3, spec.uses_cls)
    same = Example(id="same", text="the query", options=("river one", "river two"), label=0)
    other = Example(id="other", text="the query", options=("river one", "market two"), label=1)
    logged = []
    data = fitting_data([view], [encoder], {view.name: ([same, other], [other])}, logged.append)
    assert data[view.name] == ([other], [other])
    assert logged == [f"bbc-ppt-unified: dropped 1 of 2 train examples whose candidates do not fit max_length {length}"]


def test_hybrid_pt_and_hybrid_ppt_lay_out_multiple_choice_tasks_alike_with_the_question(tiny_cpt_dir):
    """PPT Appendix Table 1's MCC prompt lists the candidates, so Hybrid PT (layout options)
    and Hybrid PPT (per-format: letters) encode a multiple-choice example the same way, and
    a task with a question (C3) keeps it in the query after the passage."""
    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder
    from replicate.tasks import resolve_task

    from conftest import paper_files

    cfg = load_config(str(REPO / "config" / "paper.yaml"))
    tokenizer = BACKBONES.get("tiny-cpt").load_tokenizer(str(tiny_cpt_dir))
    views = {}
    for name in ("pt-hybrid", "ppt-hybrid"):
        method = METHODS.get(name)
        mcfg = method.make_config(cfg["methods"][name])
        for task in ("c3", "ccpm"):
            view = method.task_view(resolve_task(task, paper_files(task)), mcfg)
            encoder = MRCEncoder(tokenizer, view, mcfg.max_length, method.prompt_length(mcfg), True, 1)
            views[name, task] = (view, encoder)
    for task in ("c3", "ccpm"):
        examples = resolve_task(task, paper_files(task)).load_pools("").train[:5]
        assert examples
        for ex in examples:
            a, b = (views[m, task][1].encode(ex) for m in ("pt-hybrid", "ppt-hybrid"))
            assert a.input_ids == b.input_ids and a.option_starts == b.option_starts and a.label == b.label
    c3 = resolve_task("c3", paper_files("c3")).load_pools("").train[0]
    text = views["pt-hybrid", "c3"][0].template.fill(c3)[0]
    assert text.startswith(f"问题：{c3.text}{c3.text_b}？一、{c3.options[0]}二、") and text.endswith("答案是：")
    # English: "We ask s_q ? A. ... The answer is", the question kept after the text
    question = in_format(replace_task(TASKS.get("bbc-title-choice"), 'Headline of "{a}" for "{b}"? '), "options",
                         "hybrid")
    filled = question.template.fill(Example(id="q", text="the text", text_b="the question", options=("x", "y"),
                                            label=0))[0]
    assert filled == "We ask the text the question ? A. x B. y The answer is "
    assert question.options_of(Example(id="q", text="t", options=("x", "y"), label=0)) == ("A", "B")


def replace_task(task, template_text):
    from dataclasses import replace

    return replace(task, template=replace(task.template, text=template_text))


def test_per_format_ppt_lays_tasks_out_in_its_pretraining_pattern_and_verbalizer():
    """Per-format PPT's downstream PVP is its pre-training task's (PPT §3.2.1; the authors'
    BoolQ reader with a prompt): SPC tasks "s1 ? s2" with the SPC verbalizer's words, MCC
    tasks "s_q ? A. ... Answer is"; a task whose label words are not the verbalizer's is one
    ConfigError line."""
    method = METHODS.get("ppt")
    paper = load_config(str(REPO / "config" / "paper.yaml"))
    mcfg = method.make_config(paper["methods"]["ppt"])
    assert mcfg.template == "pretraining"
    lcqmc = method.task_view(TASKS.get("lcqmc"), mcfg)
    assert lcqmc.template.text == TASKS.get("wudao-ppt-spc").template.text == "{a}？{b}"
    assert set(lcqmc.labels) <= set(TASKS.get("wudao-ppt-spc").labels) and lcqmc.labels == TASKS.get("lcqmc").labels
    c3 = method.task_view(TASKS.get("c3"), mcfg)
    ex = Example(id="0", text="文档", text_b="问题", options=("甲", "乙"), label=1)
    assert c3.template.fill(ex)[0] == "文档问题？一、甲二、乙答案是" and c3.options_of(ex) == ("一", "二")
    formats = load_config(str(REPO / "config" / "ppt-formats.yaml"))
    same = method.task_view(TASKS.get("bbc-same-article"), method.make_config(formats["methods"]["ppt"]))
    assert same.template.fill(Example(id="p", text="s1", text_b="s2", label=0))[0] == "s1 ? s2 "
    assert same.template.text == TASKS.get("bbc-ppt-spc").template.text and same.labels == ("yes", "no")
    from dataclasses import replace

    with pytest.raises(ConfigError, match=r"^task x: template pretraining needs label words among the SPC "):
        in_format(replace(TASKS.get("lcqmc"), name="x", labels=("不同", "相同")), "options", "pretraining")


def test_chinese_paper_tasks_take_ppts_chinese_words(tiny_cpt_dir):
    """A Chinese task under the MCC layout and the hybrid template encodes with PPT's Chinese
    option list ("一、… 答案是"), letters 一, 二, ... and Appendix Table 1's Chinese prompts; the
    WuDao SPC pre-training task answers with Appendix B's 矛盾 / 中立 / 相似; English tasks
    keep the English words."""
    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder

    tokenizer = BACKBONES.get("tiny-cpt").load_tokenizer(str(tiny_cpt_dir))
    c3 = in_format(TASKS.get("c3"), "mcc", "hybrid")
    ex = Example(id="0", text="男：你好。", text_b="女的要买什么？", options=("苹果", "香蕉", "西瓜"), label=2)
    enc = MRCEncoder(tokenizer, c3, 512, 2, True, 1).encode(ex)
    tokens = "".join(tokenizer.convert_ids_to_tokens(enc.input_ids[3:]))
    assert tokens == "问题：男：你好。女的要买什么？？一、苹果二、香蕉三、西瓜答案是：一，二，三[SEP]"
    assert ["".join(tokenizer.convert_ids_to_tokens(enc.input_ids[a:b + 1]))
            for a, b in zip(enc.option_starts, enc.option_ends)] == ["一", "二", "三"]
    tnews = in_format(TASKS.get("tnews"), "mcc")
    filled = tnews.template.fill(Example(id="t", text="新闻", label=0))[0]
    assert filled.endswith("选项：一、房产二、汽车三、金融四、体育五、文化六、娱乐七、教育八、科技九、军事十、旅游十一、世界十二、农业十三、股票十四、游戏十五、故事答案是")
    assert tnews.options_of(Example(id="t", text="新闻", label=0))[-1] == "十五"
    assert in_format(TASKS.get("chnsent"), "options", "hybrid").template.text == "{a}。这很"
    assert in_format(TASKS.get("lcqmc"), "options", "hybrid").template.text == "问题：{a}？{b}"
    assert TASKS.get("wudao-ppt-spc").labels == ("矛盾", "中立", "相似")
    assert TASKS.get("openwebtext-ppt-spc").labels == ("no", "maybe", "yes")
    assert in_format(TASKS.get("sentence-polarity"), "options", "hybrid").template.text == "{a} . It was "


def test_candidate_and_sentence_limits_come_from_max_length_and_the_tokenizer(tiny_cpt_dir, tmp_path):
    """How much of a PPT candidate an input keeps is a share of the tokens max_length leaves
    (more at a longer max_length, each candidate cut to the same count of tokens), not a
    word count (WuDao's characters are not words: a 16-candidate draw keeps more than the 3
    characters the embedded word limits gave); WuDao sentences longer than 25 characters are
    drawn."""
    from replicate.backbones import BACKBONES
    from replicate.mrc import MRCEncoder
    from replicate.tasks import resolve_task

    tokenizer = BACKBONES.get("tiny-cpt").load_tokenizer(str(tiny_cpt_dir))
    view = in_format(TASKS.get("wudao-ppt-unified"), "mcc")
    kept = {}
    for length in (256, 512):
        encoder = MRCEncoder(tokenizer, view, length, 50, True, 1)
        per, query = encoder.listing_room(16)
        options = tuple(ZH_WORDS[i] + "的" * 59 for i in range(16))
        ex = Example(id="x", text="问" * 900, options=options, label=3)
        enc = encoder.encode(ex)
        assert len(enc.input_ids) == length
        listing = "".join(tokenizer.convert_ids_to_tokens(enc.input_ids[51:enc.option_starts[0]]))
        # every candidate cut to ``per`` tokens: the first is all 的, the others start with another character
        assert listing.count("的") == per + 15 * (per - 1) and listing.endswith("的答案是")
        assert listing.count("问") == query
        kept[length] = per
    assert 3 < kept[256] < kept[512]
    rows = [{"content": "".join(f"第{d}篇文章的第{i}句话讲的是一件比二十五个字更长的事情，而且还有下文。" for i in range(8))}
            for d in range(12)]
    path = tmp_path / "wudao.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    pools = resolve_task("wudao-ppt-spc", {"wudao-ppt-spc": {"train": str(path)}}).source.load(str(tmp_path))
    assert pools.train and all(len(ex.text) > 25 for ex in pools.train)
