"""MP2's Fig 5 from logged routers: tasks with the same binarised router land in one group."""

import json

from replicate.figures import router_dendrogram, router_groups


def test_tasks_with_the_same_router_pattern_form_a_group(tmp_path):
    tasks = [{"name": n, "family": f} for n, f in (("topic-a", "topic"), ("topic-b", "topic"), ("senti-a", "sentiment"),
                                                    ("senti-b", "sentiment"), ("pair-a", "pair"))]
    on, off = 0.7, -0.4
    routers = [[[on, on, off, off]], [[on, on, off, off]], [[off, off, on, on]], [[off, off, on, on]],
               [[on, off, on, off]]]
    found = router_groups(tasks, routers, n_groups=3)
    groups = {tuple(g["tasks"]): g for g in found["groups"]}
    assert set(groups) == {("topic-a", "topic-b"), ("senti-a", "senti-b"), ("pair-a",)}
    assert groups[("topic-a", "topic-b")]["families"] == "topic 2"
    assert groups[("senti-a", "senti-b")]["patterns"] == ["0011"]
    summary = {"pretraining": "mp2-shallow", "backbone": "tiny", "tasks": tasks, "routers": routers,
               "checkpoint": {"sha256": "0" * 64}}
    (tmp_path / "pretrain.json").write_text(json.dumps(summary))
    written = router_dendrogram(str(tmp_path / "pretrain.json"), str(tmp_path / "fig5"), n_groups=3)
    assert [p.rsplit(".", 1)[1] for p in written] == ["png", "pdf", "json"]
    assert (tmp_path / "fig5.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "fig5.json").read_text())["groups"] == found["groups"]
