"""The text-to-text formulation on a tiny random T5 written as local files (tests/tiny_t5.py):
the prompt replaces its slots in the encoder input, seeds batch as they train alone, the loss is
the target tokens' cross entropy, and the two answer readers (rank classification, greedy
generation) agree where the model is certain."""

from __future__ import annotations

import pytest
import torch

from replicate.backbones import BACKBONES
from replicate.errors import ConfigError
from replicate.methods import METHODS
from replicate.model import InputPrompt, MLPPrompt, PromptedSeq2Seq
from replicate.seq2seq import Seq2Seq, TextEncoder, class_metrics, collate_text, matthews, squad_f1, text_metrics
from replicate.tasks.base import Example, TaskSpec, Template, TextFormat
from replicate.train import GroupTrainer, SeedData
from tiny_t5 import write_tiny_t5

SPEC = BACKBONES.get("tiny-t5-files")

# A two-label task in both lineages' wording: ATTEMPT's digits, ComPT's words (one of two tokens).
TOY = TaskSpec("toy", "classification", ("negative", "positive"), "acc", "unseen-task", "paper", Template("{a}"),
               None, "", "toy sentiment", formats={
                   "attempt": TextFormat("sentence: {a}", ("0", "1")),
                   "compt": TextFormat("sentence: {a}", ("negative", "not negative"))})
EXAMPLES = [Example(id=str(i), text=("good fine great" if i % 2 else "bad awful poor") + f" w{i}", label=i % 2)
            for i in range(16)]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    texts = ["sentence: " + e.text for e in EXAMPLES] + ["negative not positive 0 1 yes no way"]
    return write_tiny_t5(str(tmp_path_factory.mktemp("tiny-t5")), texts)


def _load(t5_dir):
    return SPEC.load(local_dir=t5_dir, seq2seq=True)


def _setup(t5_dir, method_name: str, seeds, **overrides):
    method = METHODS.get(method_name)
    cfg = method.make_config({"formulation": "seq2seq", **overrides})
    backbone, tok = _load(t5_dir)
    encoder = method.encoder(tok, TOY, cfg, SPEC)
    enc = [encoder.encode(e) for e in EXAMPLES]
    data = [SeedData(s, enc[:8], enc[8:12], enc[12:]) for s in seeds]
    model = method.build(backbone, SPEC, tok, cfg, list(seeds))
    return method, cfg, encoder, data, model


def test_the_prompt_replaces_its_slots_embeddings_in_the_encoder_input(t5_dir):
    backbone, tok = _load(t5_dir)
    prompt = InputPrompt(torch.randn(2, 3, 32))
    model = PromptedSeq2Seq(backbone, prompt).eval()
    for position in ("prefix", "suffix"):
        encoder = TextEncoder(tok, TOY, "attempt", 64, 3, position)
        e = encoder.encode(EXAMPLES[0])
        batch = collate_text([e, e], [0, 1], 0)
        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        # the slots' token ids do not matter: their embeddings are replaced, not added to
        other = batch.input_ids.clone()
        start = e.prompt_start
        other[:, start:start + 3] = 7
        again = model.encode(other, batch.attention_mask, batch.seed_index, batch.prompt_start)
        assert torch.allclose(hidden, again)
        # and the encoder sees exactly the prompt there: the same as feeding the embeddings by hand
        embeds = backbone.get_input_embeddings()(batch.input_ids).detach().clone()
        embeds[0, start:start + 3] = prompt.weight[0]
        embeds[1, start:start + 3] = prompt.weight[1]
        want = backbone.encoder(inputs_embeds=embeds, attention_mask=batch.attention_mask).last_hidden_state
        assert torch.allclose(hidden, want, atol=1e-6)
        assert not torch.allclose(hidden[0], hidden[1])  # each example reads its own seed's prompt
    assert TextEncoder(tok, TOY, "attempt", 64, 3, "prefix").encode(EXAMPLES[0]).prompt_start == 0
    suffix = TextEncoder(tok, TOY, "attempt", 64, 3, "suffix").encode(EXAMPLES[0])
    assert suffix.prompt_start == len(suffix.input_ids) - 4 and suffix.input_ids[-1] == tok.eos_token_id


def test_the_loss_is_the_target_tokens_cross_entropy(t5_dir):
    backbone, tok = _load(t5_dir)
    model = PromptedSeq2Seq(backbone).eval()
    encoder = TextEncoder(tok, TOY, "compt", 64, 0)
    items = [encoder.encode(EXAMPLES[0]), encoder.encode(EXAMPLES[1])]  # targets of 1 and 2 words
    batch = collate_text(items, [0, 0], 0)
    losses = Seq2Seq(TOY, "compt").example_losses(model, batch)
    for i, e in enumerate(items):
        want = backbone(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.target_ids])).loss
        assert losses[i].item() == pytest.approx(want.item(), rel=1e-5)


def test_batched_seeds_equal_solo_seeds_on_the_seq2seq_model(t5_dir):
    overrides = dict(prompt_length=4, init="uniform", epochs=3, lr=0.3, batch_size=4, text_format="compt",
                     lr_schedule="linear", warmup=0.2)
    method, cfg, encoder, data, model = _setup(t5_dir, "pt", [3, 5], **overrides)
    together = GroupTrainer(model, method, cfg, TOY, encoder, data, 0, log=lambda m: None).fit()
    prompt_together = model.prompt.weight.detach().clone()
    for k, seed in enumerate([3, 5]):
        method, cfg, encoder, data, model = _setup(t5_dir, "pt", [seed], **overrides)
        alone = GroupTrainer(model, method, cfg, TOY, encoder, data, 0, log=lambda m: None).fit()[0]
        assert alone.loss_curve == together[k].loss_curve
        assert alone.test_metrics == together[k].test_metrics
        assert alone.test_details == together[k].test_details
        assert torch.allclose(model.prompt.weight[0], prompt_together[k], atol=1e-6)
    assert together[0].loss_curve != together[1].loss_curve  # the seeds did differ


def test_rank_classification_and_generation_agree_where_the_model_is_certain(t5_dir):
    """Model tuning memorises the training examples' targets; on each example where the model
    is certain of its greedy output (every token's probability > 0.9) the generated string is
    the verbalizer string that rank classification picks."""
    method, cfg, encoder, data, model = _setup(t5_dir, "model-tuning", [1], epochs=30, lr=3e-2, batch_size=8,
                                               text_format="compt")
    GroupTrainer(model, method, cfg, TOY, encoder, data, 0, log=lambda m: None).fit()
    model.eval()
    formulation = Seq2Seq(TOY, "compt")
    batch = collate_text(data[0].train, [0] * 8, 0)
    with torch.no_grad():
        preds = formulation.predict(model, batch, final=True)
        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        generated = [p["generate"] + [1] for p in preds]
        width = max(map(len, generated))
        ids = torch.tensor([g + [0] * (width - len(g)) for g in generated])
        mask = torch.tensor([[1] * len(g) + [0] * (width - len(g)) for g in generated], dtype=torch.bool)
        token_p = model.token_logprobs(hidden, batch.attention_mask, ids, mask).exp().masked_fill(~mask, 1.0)
    certain = (token_p > 0.9).all(dim=1).tolist()
    assert sum(certain) >= 6, "the tuned model should be certain of most of its training examples"
    for p, sure, e in zip(preds, certain, data[0].train):
        if sure:
            assert encoder.decode(p["generate"]) == TOY.formats["compt"].targets[p["rank"]]
            assert p["rank"] == e.label


class _FixedScores(torch.nn.Module):
    """A stand-in model whose next-token log-probabilities are fixed per token id."""

    def __init__(self, logp_of: dict, generated):
        super().__init__()
        self.logp_of, self.generated = logp_of, generated

    def encode(self, input_ids, attention_mask, seed_index, prompt_start):
        return torch.zeros(input_ids.shape[0], input_ids.shape[1], 2)

    def token_logprobs(self, hidden, attention_mask, targets, target_mask):
        table = torch.tensor([self.logp_of.get(i, -50.0) for i in range(int(targets.max()) + 1)])
        return table[targets] * target_mask

    def generate(self, hidden, attention_mask, max_new_tokens):
        return [list(g) for g in self.generated[:hidden.shape[0]]]


def test_rank_sums_every_token_of_a_multi_token_word_and_breaks_ties_to_the_lowest_label(t5_dir):
    _, tok = _load(t5_dir)
    two_words = TaskSpec("yn", "classification", ("yes", "no"), "acc", "unseen-task", "paper", Template("{a}"), None,
                         "", "", formats={"compt": TextFormat("sentence: {a}", ("yes", "no way"))})
    encoder = TextEncoder(tok, two_words, "compt", 64, 0)
    (yes, eos), (no, way, _) = encoder.candidates
    batch = collate_text([encoder.encode(EXAMPLES[0])], [0], 0)
    formulation = Seq2Seq(two_words, "compt")
    # "no" is likelier than "yes", but "no way" as a whole is not: -1.5 against -2.7
    model = _FixedScores({yes: -1.0, no: -0.2, way: -2.0, eos: -0.5}, [[yes]])
    assert formulation.predict(model, batch)[0]["rank"] == 0
    model = _FixedScores({yes: -1.0, no: -0.2, way: -0.2, eos: -0.5}, [[yes]])
    assert formulation.predict(model, batch)[0]["rank"] == 1  # -1.5 against -0.9
    model = _FixedScores({yes: -1.0, no: -0.5, way: -0.5, eos: -0.5}, [[yes]])
    assert formulation.predict(model, batch)[0]["rank"] == 0  # a tie goes to the lowest label
    # a word that is the end of another ("negative", "not negative") competes as a whole string
    encoder = TextEncoder(tok, TOY, "compt", 64, 0)
    neg, not_neg = encoder.candidates
    assert not_neg[1:] == neg


def test_generation_counts_an_output_outside_the_verbalizer_as_invalid_and_wrong(t5_dir):
    _, tok = _load(t5_dir)
    encoder = TextEncoder(tok, TOY, "compt", 64, 0)
    items = [encoder.encode(e) for e in EXAMPLES[:4]]  # labels 0, 1, 0, 1
    neg = encoder.candidates[0][0]
    not_id = encoder.candidates[1][0]
    # outputs: "negative" (right), "not" (invalid), "negative" (right), "not negative" (right)
    model = _FixedScores({neg: -1.0}, [[neg], [not_id], [neg], [not_id, neg]])
    formulation = Seq2Seq(TOY, "compt", reader="generate")
    preds = formulation.predict(model, collate_text(items, [0] * 4, 0), final=True)
    metrics = formulation.score(encoder, items, preds)
    assert metrics["generate/invalid"] == 1.0
    assert metrics["acc"] == metrics["generate/acc"] == 75.0
    assert metrics["rank/acc"] == 50.0  # rank always picks "negative" here
    details = formulation.details(encoder, items, preds)["generated"]
    assert details == {"negative": {"negative": 2}, "not negative": {"not": 1, "not negative": 1}}


def test_metrics_as_the_papers_score_them():
    assert matthews([1, 1, 0, 0], [1, 0, 0, 0], 2) == pytest.approx(0.5773502691896258)
    assert matthews([0, 1, 2, 0], [0, 1, 2, 0], 3) == pytest.approx(1.0)
    assert matthews([-1, 1, 0, 0], [1, 1, 0, 0], 2) < 1.0  # an invalid output is never right
    # binary F1 is label 1's (MRPC's and QQP's "equivalent"/"duplicate"), macro-F1 the labels' mean
    m = class_metrics([1, 1, 0, 0], [1, 0, 0, 0], 2)
    assert m["acc"] == 75.0 and m["f1"] == pytest.approx(100 * 2 / 3) and m["macro_f1"] == pytest.approx(100 * (2 / 3 + 0.8) / 2)
    assert class_metrics([-1, 1, 0], [1, 1, 0], 2)["f1"] == pytest.approx(100 * 2 / 3)  # an invalid 1 is a miss
    assert squad_f1("The Eiffel tower!", "eiffel Tower") == 1.0
    assert squad_f1("in Paris France", "Paris") == pytest.approx(0.5)
    sts = TaskSpec("sts", "regression", (), "pearson", "unseen-task", "paper", Template("{a}"), None, "", "")
    m = text_metrics(sts, [1.0, 2.0, None, 4.0], [1.2, 2.2, 3.0, 4.4])
    from scipy import stats
    # an unparsable output counts as -1.0 (ATTEMPT's string_to_float default)
    assert m["pearson"] == pytest.approx(100 * stats.pearsonr([1.0, 2.0, -1.0, 4.0], [1.2, 2.2, 3.0, 4.4])[0])
    assert m["spearman"] == pytest.approx(100 * stats.spearmanr([1.0, 2.0, -1.0, 4.0], [1.2, 2.2, 3.0, 4.4])[0])
    # binary F1 (MRPC, QQP, MultiRC): an invalid output is the opposite of the gold, so on a
    # gold 0 it is a false positive: tp 1, fp 1 (the invalid one), fn 1 -> 2 / 4
    assert class_metrics([1, -1, 0, 0], [1, 0, 1, 0], 2)["f1"] == pytest.approx(50.0)
    assert class_metrics([1, 0, 0, 0], [1, 0, 1, 0], 2)["f1"] == pytest.approx(100 * 2 / 3)
    # MultiRC's exact match: a question counts when every one of its answer options is right
    multirc = TaskSpec("mrc-toy", "classification", ("False", "True"), "f1", "unseen-task", "paper", Template("{a}"),
                       None, "", "")
    em = text_metrics(multirc, [1, 0, 1, 1, 0], [1, 0, 0, 1, 0], ["q1", "q1", "q2", "q2", "q3"])["em"]
    assert em == pytest.approx(100 * 2 / 3)


def test_seq2seq_settings_are_refused_in_one_line_where_they_cannot_run(t5_dir):
    with pytest.raises(ConfigError, match="methods/ptv2/formulation"):
        METHODS.get("ptv2").make_config({"formulation": "seq2seq"})
    with pytest.raises(ConfigError, match="seq2seq needs an encoder-decoder"):
        METHODS.get("pt").check_backbone(METHODS.get("pt").make_config({"formulation": "seq2seq"}),
                                         BACKBONES.get("tiny-bert"))
    with pytest.raises(ConfigError, match="reader"):
        METHODS.get("pt").make_config({"formulation": "seq2seq", "reader": "vote"})
    with pytest.raises(ConfigError, match="select_metric"):
        METHODS.get("pt").make_config({"select_metric": "average"})  # the MRC formulation has no average
    _, tok = _load(t5_dir)
    bare = TaskSpec("bare", "classification", ("a", "b"), "acc", "unseen-task", "paper", Template("{a}"), None, "", "")
    with pytest.raises(ConfigError, match="no 'attempt' text-to-text form"):
        TextEncoder(tok, bare, "attempt", 64, 0)


def test_pt_on_t5_base_counts_the_prompt_alone():
    method = METHODS.get("pt")
    cfg = method.make_config({"formulation": "seq2seq", "prompt_length": 100})
    assert method.trainable_parameters(BACKBONES.get("t5-base"), cfg) == {"prompt": 76_800}
    assert METHODS.get("model-tuning").trainable_parameters(
        BACKBONES.get("t5-base"), METHODS.get("model-tuning").make_config({"formulation": "seq2seq"})) == {
        "backbone": 222_903_552}


MLP_TENSORS = ("embedding", "w1", "b1", "w2", "b2")


def test_mlp_prompt_batched_seeds_equal_solo_seeds(t5_dir):
    """ComPT's PT (an MLP prompt encoder, ordinal init): each seed's rows AND MLP train in its
    own slice, so two seeds batched give each one's solo loss curve, test scores and tensors."""
    overrides = dict(prompt_length=4, init="ordinal", prompt_encoder="mlp", prompt_encoder_hidden=8, epochs=3,
                     lr=0.05, batch_size=4, text_format="compt", lr_schedule="linear", warmup=0.2,
                     grad_clip=0.01)  # always clips: each seed's norm must be over its own tensors alone
    method, cfg, encoder, data, model = _setup(t5_dir, "pt", [3, 5], **overrides)
    assert isinstance(model.prompt, MLPPrompt) and model.prompt.w1.shape == (2, 8, 32)
    start = {k: getattr(model.prompt, k).detach().clone() for k in MLP_TENSORS}
    together = GroupTrainer(model, method, cfg, TOY, encoder, data, 0, log=lambda m: None).fit()
    final = {k: getattr(model.prompt, k).detach().clone() for k in MLP_TENSORS}
    for k, seed in enumerate([3, 5]):
        method, cfg, encoder, data, model = _setup(t5_dir, "pt", [seed], **overrides)
        for name in MLP_TENSORS:  # a seed's initial MLP is its own, alone or batched
            assert torch.equal(getattr(model.prompt, name)[0], start[name][k]), name
        alone = GroupTrainer(model, method, cfg, TOY, encoder, data, 0, log=lambda m: None).fit()[0]
        assert alone.loss_curve == together[k].loss_curve
        assert alone.test_metrics == together[k].test_metrics
        assert alone.test_details == together[k].test_details
        for name in MLP_TENSORS:
            assert torch.allclose(getattr(model.prompt, name)[0], final[name][k], atol=1e-6), name
            assert not torch.equal(final[name][k], start[name][k]), name  # every tensor trained
    assert together[0].loss_curve != together[1].loss_curve  # the seeds did differ (their MLPs)
    assert not torch.equal(start["w1"][0], start["w1"][1])


def test_the_prompt_that_reaches_the_encoder_is_the_mlp_of_the_embedding(t5_dir):
    """The encoder sees Linear -> GELU -> Linear of each seed's rows (ComPT's MLPPromptEncoder),
    not the rows themselves; the MLP starts as torch.nn.Linear would (U(+-1/sqrt(fan_in)))."""
    method, cfg, encoder, data, model = _setup(t5_dir, "pt", [3, 5], prompt_length=3, init="uniform",
                                               prompt_encoder="mlp", prompt_encoder_hidden=8)
    model.eval()
    p = model.prompt
    for name, fan_in in (("w1", 32), ("b1", 32), ("w2", 8), ("b2", 8)):
        t = getattr(p, name)
        assert t.abs().max() <= fan_in ** -0.5 and t.abs().max() > 0.5 * fan_in ** -0.5
    e = encoder.encode(EXAMPLES[0])
    batch = collate_text([e, e], [0, 1], 0)
    with torch.no_grad():
        hidden = model.encode(batch.input_ids, batch.attention_mask, batch.seed_index, batch.prompt_start)
        embeds = model.backbone.get_input_embeddings()(batch.input_ids).clone()
        for s in range(2):
            mlp = torch.nn.Sequential(torch.nn.Linear(32, 8), torch.nn.GELU(), torch.nn.Linear(8, 32))
            mlp[0].weight.copy_(p.w1[s]), mlp[0].bias.copy_(p.b1[s])
            mlp[2].weight.copy_(p.w2[s]), mlp[2].bias.copy_(p.b2[s])
            out = mlp(p.embedding[s])
            assert not torch.allclose(out, p.embedding[s])
            embeds[s, e.prompt_start:e.prompt_start + 3] = out
        want = model.backbone.encoder(inputs_embeds=embeds, attention_mask=batch.attention_mask).last_hidden_state
    assert torch.allclose(hidden, want, atol=1e-6)
    assert not torch.allclose(hidden[0], hidden[1])


def test_ordinal_init_copies_input_embedding_rows_0_to_l(t5_dir):
    backbone, _ = _load(t5_dir)
    rows = backbone.get_input_embeddings().weight.detach()[:5]
    for encoder, field in (("none", "weight"), ("mlp", "embedding")):
        _, _, _, _, model = _setup(t5_dir, "pt", [3, 5], prompt_length=5, init="ordinal", prompt_encoder=encoder)
        got = getattr(model.prompt, field)
        assert got.shape == (2, 5, 32) and torch.equal(got[0], rows) and torch.equal(got[1], rows)


def test_a_prompt_encoder_is_refused_in_one_line_where_it_is_not_applied():
    with pytest.raises(ConfigError, match="methods/pt/prompt_encoder: pt on the mrc formulation"):
        METHODS.get("pt").make_config({"prompt_encoder": "mlp"})
    for name in ("ptv2", "spot", "ppt-unified"):
        with pytest.raises(ConfigError, match=f"methods/{name}/prompt_encoder: {name} applies no prompt encoder"):
            METHODS.get(name).make_config({"prompt_encoder": "mlp", "formulation": "seq2seq"}
                                          if name != "ptv2" else {"prompt_encoder": "mlp"})
    with pytest.raises(ConfigError, match="methods/pt/prompt_encoder_hidden: set, but prompt_encoder is 'none'"):
        METHODS.get("pt").make_config({"formulation": "seq2seq", "prompt_encoder_hidden": 8})
    with pytest.raises(ConfigError, match="methods/pt/prompt_encoder: must be one of"):
        METHODS.get("pt").make_config({"formulation": "seq2seq", "prompt_encoder": "lstm"})


def test_compt_pt_counts_its_mlp_encoder():
    """50 rows x 768 plus Linear(768, 768) and Linear(768, 768) with biases (ComPT's PT.json)."""
    from replicate.params import count

    method = METHODS.get("pt")
    cfg = method.make_config({"formulation": "seq2seq", "prompt_length": 50, "prompt_encoder": "mlp"})
    assert method.trainable_parameters(BACKBONES.get("t5-base"), cfg) == {"prompt": 50 * 768 + 2 * (768 * 768 + 768)}
    out = count("compt", "pt")
    assert out["trainable"] == 1_219_584 and out["prompt_rows"] == 38_400 and out["prompt_encoder_params"] == 1_181_184
    assert count("compt", "pt", prompt_length=100)["trainable"] == 76_800 + 1_181_184
    assert count("mpt", "pt")["trainable"] == 76_800


def test_learning_rate_schedules_warm_up_then_decay():
    from replicate.train import lr_lambda

    linear = lr_lambda("linear", 0.2, 10)
    assert [round(linear(i), 4) for i in range(10)] == [0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    steps = lr_lambda("constant", 0.0, 10, warmup_steps=4)
    assert [steps(i) for i in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert [lr_lambda("constant", 0.0, 5)(i) for i in range(5)] == [1.0] * 5
    from transformers import get_linear_schedule_with_warmup

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    hf = get_linear_schedule_with_warmup(opt, 2, 10).lr_lambdas[0]
    assert [hf(i) for i in range(10)] == [linear(i) for i in range(10)]


def test_a_long_input_gives_way_to_the_prompt_and_the_closing_eos(t5_dir):
    """The input's end is cut so that input, prompt slots and </s> fill max_length exactly."""
    _, tok = _load(t5_dir)
    long = Example(id="long", text=" ".join(["good fine great"] * 10), label=1)
    for position in ("prefix", "suffix"):
        encoder = TextEncoder(tok, TOY, "attempt", 10, 3, position)
        e = encoder.encode(long)
        assert len(e.input_ids) == 10 and e.input_ids[-1] == tok.eos_token_id
        slots = e.input_ids[e.prompt_start:e.prompt_start + 3]
        assert slots == [encoder.slot] * 3
        words = [i for k, i in enumerate(e.input_ids[:-1]) if not e.prompt_start <= k < e.prompt_start + 3]
        assert words == encoder._ids(encoder.source_text(long))[:6]  # the first 6 tokens: the end gave way
    short = TextEncoder(tok, TOY, "attempt", 64, 3).encode(EXAMPLES[0])
    assert len(short.input_ids) == 3 + len(tok(short.text, add_special_tokens=False)["input_ids"]) + 1


def test_the_trainers_learning_rate_follows_the_schedule_over_every_optimizer_step(t5_dir, monkeypatch):
    """lr_schedule/warmup over the stage's optimizer steps (epochs x batches), not its epochs."""
    from replicate.train import lr_lambda

    lrs = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    method, cfg, encoder, data, model = _setup(t5_dir, "pt", [3], prompt_length=4, init="uniform", epochs=3, lr=0.3,
                                               batch_size=4, text_format="compt", lr_schedule="linear", warmup=0.2)
    GroupTrainer(model, method, cfg, TOY, encoder, data, 0, log=lambda m: None).fit()
    factor = lr_lambda("linear", 0.2, 3 * 2)  # 3 epochs of 2 batches (8 training examples, 4 a batch)
    assert lrs == pytest.approx([0.3 * factor(i) for i in range(6)])


@pytest.mark.parametrize("select_on_dev", [True, False])
def test_select_on_dev_tests_the_best_dev_checkpoint_or_else_the_last(t5_dir, select_on_dev):
    """ATTEMPT tests each seed's best checkpoint on dev; ComPT (select_on_dev: false) its last."""
    method, cfg, encoder, data, model = _setup(t5_dir, "pt", [3, 5], prompt_length=4, init="uniform", epochs=3,
                                               lr=0.3, batch_size=4, text_format="compt", select_on_dev=select_on_dev)
    trainer = GroupTrainer(model, method, cfg, TOY, encoder, data, 0, log=lambda m: None)
    seen = {"dev": [], "test": []}
    evaluate, score = trainer._evaluate, trainer._score

    def spy_evaluate(split, seeds):
        seen[split].append(model.prompt.weight.detach().clone())
        return evaluate(split, seeds)

    def dev_falls(encs, preds):  # the dev score falls epoch by epoch: epoch 1 is the best on dev
        out = score(encs, preds)
        if any(encs is d.dev for d in data):
            out[TOY.metric] = 100.0 - len(seen["dev"])
        return out

    trainer._evaluate, trainer._score = spy_evaluate, dev_falls
    outcomes = trainer.fit()
    assert [o.best_epoch for o in outcomes] == [1, 1] and len(seen["dev"]) == 3 and len(seen["test"]) == 1
    last = model.prompt.weight.detach()
    assert not torch.allclose(seen["dev"][0], last)  # the prompts moved after epoch 1
    tested = seen["test"][0]
    assert torch.equal(tested, seen["dev"][0] if select_on_dev else last)
