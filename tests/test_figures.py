"""MP2's Fig 5 from logged routers: tasks with the same binarised router land in one group."""

import json

from replicate.figures import router_dendrogram, router_groups, two_stage_curves


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


def two_stage_result(tmp_path, method, task, seed, curve, unit="epoch"):
    from replicate.results import write_result

    result = {"method": method, "task": task, "seed": seed, "status": "ok", "metric": "acc", "score": 50.0,
              "metrics": {"acc": 50.0}, "dev": {"curve": curve, "unit": unit},
              "stages": [{"epochs": [1, 2]}, {"epochs": [3, 4]}]}
    return write_result(str(tmp_path / f"{method}-{task}-{seed}.json"), result)


def test_two_stage_curves_write_each_steps_mean_std_and_seeds(tmp_path):
    """Fig 3's data: per (method, task, step) the mean and sample std (ddof=1) over the seeds that
    logged the step, 0 for one seed, rounded to 3 decimals, sorted by method, task and step."""
    paths = [two_stage_result(tmp_path, "mp2-shallow", "b-task", 8, [[2, 50.0], [4, 60.0]]),
             two_stage_result(tmp_path, "mp2-shallow", "b-task", 13, [[2, 55.0], [4, 70.0]]),
             two_stage_result(tmp_path, "mp2-shallow", "b-task", 21, [[2, 51.0]]),
             two_stage_result(tmp_path, "mp2-deep", "a-task", 8, [[8, 10.0], [16, 20.0]], unit="forward call")]
    written = two_stage_curves(paths, str(tmp_path / "fig3"))
    assert [p.rsplit(".", 1)[1] for p in written] == ["png", "pdf", "csv"]
    # by hand: mean(50, 55, 51) = 52; sample std = sqrt((4 + 9 + 1) / 2) = sqrt(7) = 2.6458
    assert (tmp_path / "fig3.csv").read_text() == (
        "method,task,unit,step,dev_mean,dev_std,n\n"
        "mp2-deep,a-task,forward call,8,10.0,0.0,1\n"
        "mp2-deep,a-task,forward call,16,20.0,0.0,1\n"
        "mp2-shallow,b-task,epoch,2,52.0,2.646,3\n"
        "mp2-shallow,b-task,epoch,4,65.0,7.071,2\n")
