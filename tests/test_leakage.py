"""Nothing of a test pool reaches training, dev selection or initialisation, on data whose
ids collide across splits exactly as the Hub's do."""

import pytest
import torch

from replicate import jobs
from replicate.backbones import BACKBONES
from replicate.config import Group, cell_settings, check_config
from replicate.methods import METHODS
from replicate.methods.common import seed_generator
from replicate.mrc import MRCEncoder
from replicate.splits import Protocol, draw_split, drop_long, resolve
from replicate.tasks import resolve_task

from conftest import paper_files


@pytest.fixture
def cmnli_config(tiny_config, tiny_cpt_dir):
    cfg = dict(tiny_config, backbone_dirs={"tiny-cpt": str(tiny_cpt_dir)}, paper_data_files=paper_files("cmnli"))
    cfg["grid"] = dict(cfg["grid"], backbone="tiny-cpt", tasks=["cmnli"], shots=[32])
    cfg["methods"] = {"pt": {"epochs": 1, "max_length": 64, "prompt_length": 4}}
    return check_config(cfg)


def test_test_examples_are_encoded_as_themselves_when_ids_collide(tiny_cpt_dir):
    task = resolve_task("cmnli", paper_files("cmnli"))
    pools = task.load_pools("")
    tok = BACKBONES.get("tiny-cpt").load_tokenizer(str(tiny_cpt_dir))
    encoder = MRCEncoder(tok, task, 128, 4, True, 1)
    cache: dict = {}
    for seed in (8, 13):  # the second seed reads the cache the first one filled
        parts = resolve(draw_split(task, pools, 32, seed, Protocol()), pools)
        train, dev, test = jobs.encode_parts(encoder, parts, cache)
        train_ids = {ex.id for ex in parts["train"] + parts["dev"]}
        assert train_ids & {ex.id for ex in parts["test"]}  # the collision the old cache fell into
        for name, encoded in (("train", train), ("dev", dev), ("test", test)):
            assert [e.text for e in encoded] == [task.template.fill(ex)[0] for ex in parts[name]]


def test_prompt_init_vocabulary_is_counted_on_the_training_pool_only(cmnli_config, tmp_path, monkeypatch):
    from replicate.methods import common

    seen = []
    real = common.frequent_tokens

    def recording(tokenizer, texts, k):
        texts = list(texts)
        seen.extend(texts)
        return real(tokenizer, texts, k)

    monkeypatch.setattr(common, "frequent_tokens", recording)
    settings = cell_settings(cmnli_config, Group("pt", "tiny-cpt", "cmnli", 32))
    splits = [str(tmp_path / "s8.json")]
    jobs.make_splits(settings, [8], "", splits)
    jobs.train_group(settings, [8], splits, [str(tmp_path / "r8.json")], "")
    task = resolve_task("cmnli", paper_files("cmnli"))
    pools = task.load_pools("")
    test_texts = {task.template.fill(ex)[0] for ex in pools.test}
    assert seen and not test_texts & set(seen)
    assert set(seen) <= {task.template.fill(ex)[0] for ex in pools.train}


def test_too_long_extractive_examples_leave_both_pools(tiny_cpt_dir):
    spec = BACKBONES.get("tiny-cpt")
    task = resolve_task("cmrc-2018", paper_files("cmrc-2018"))
    pools = task.load_pools("")
    protocol = Protocol(drop_longer_than=512, length_prompt_slots=50)
    kept, dropped = drop_long(task, pools, spec.load_tokenizer(str(tiny_cpt_dir)), protocol, spec)
    assert dropped == {"train": 0, "test": 1}
    assert [ex.id for ex in pools.test if ex not in kept.test] == ["DEV_LONG_QUERY_0"]


def test_each_seed_and_purpose_draws_from_its_own_stream():
    draws = {(s, p): torch.rand(8, generator=seed_generator(s, p)) for s in (8, 9) for p in ("head", "prompt",
                                                                                            "deep-prompt")}
    values = list(draws.values())
    assert all(not torch.equal(a, b) for i, a in enumerate(values) for b in values[i + 1:])
    spec = BACKBONES.get("tiny-bert")
    method = METHODS.get("ptv2")
    cfg = method.make_config({"prompt_length": 2, "init": "uniform"})
    backbone, tok = spec.load()
    model = method.build(backbone, spec, tok, cfg, [8, 9])
    # the head, layer 0 and the deeper layers of seed 8 come from seed 8's own streams, not
    # from one shared stream nor from seed 9's (the old deep init used seed + 1)
    head = torch.randn(spec.d_model, 2, generator=seed_generator(8, "head")) * 0.02
    torch.testing.assert_close(model.head.weight[0], head)
    first = (torch.rand(2, spec.d_model, generator=seed_generator(8, "prompt")) * 2 - 1) * cfg.init_range
    torch.testing.assert_close(model.prompt.weight[0, 0], first)
    deep = torch.randn(spec.n_layers - 1, 2, spec.d_model, generator=seed_generator(8, "deep-prompt"))
    torch.testing.assert_close(model.prompt.weight[0, 1:], deep * cfg.deep_init_std)
