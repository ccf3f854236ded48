"""Aggregation: mean ± std per (method, task), MP2 Table 3's two tracks, nothing dropped."""

import csv
import io
import statistics

from replicate.config import cells, check_config, result_path, split_path
from replicate.io import write_json_atomic
from replicate.tables import build_table3, format_count, to_csv, to_latex, to_markdown


def fake_result(cfg, cell, score, status="ok"):
    """A result file as train writes it (only the fields aggregation reads are filled)."""
    write_json_atomic(result_path(cfg, cell), {"status": status, "score": score if status == "ok" else None,
                                               "provenance": {"config_hash": "h"}})


def test_mean_std_missing_and_failed_cells(tiny_config):
    cfg = check_config(tiny_config)
    cfg["table3"]["tasks"] = ["bbc-topic", "review-polarity", "hedge-detection"]  # both tracks
    cfg["table3"]["methods"] = ["pt", "ptv2"]
    scores = {8: 60.0, 13: 70.0}
    for cell in cells(cfg):
        if cell.method == "pt" and cell.task == "bbc-topic":
            fake_result(cfg, cell, scores[cell.seed])
        elif cell.method == "pt" and cell.task == "review-polarity":
            fake_result(cfg, cell, 50.0, status="ok" if cell.seed == 8 else "failed")
        elif cell.method == "ptv2" and cell.task == "bbc-topic":
            fake_result(cfg, cell, None, status="failed")
    write_json_atomic(split_path(cfg, "bbc-topic", 8, 8), {"label_counts": {"test": {"a": 3, "b": 1}}})
    table = build_table3(cfg)
    assert [b[0] for b in table.blocks] == ["UNSEEN DATA / Gradient Descent", "UNSEEN TASK / Gradient Descent"]
    pt = table.cells[("pt", "bbc-topic")]
    assert pt.mean == 65.0 and pt.std == statistics.stdev([60.0, 70.0]) and pt.text() == "65.0 ± 7.1"
    assert table.cells[("pt", "review-polarity")].text() == "50.0 (n=1/2)"
    assert table.cells[("ptv2", "bbc-topic")].text() == "failed (2/2)"
    assert table.cells[("ptv2", "hedge-detection")].text() == "missing"
    assert table.cells[("majority-class", "bbc-topic")].mean == 75.0

    md = to_markdown(table)
    assert "| Prompt Tuning | 128 (+66 head) | 65.0 ± 7.1† | missing | — |" in md  # below majority (75.0)
    assert "†: mean not above the majority-class reference" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    statuses = {(r["method"], r["task"]): r["status"] for r in rows}
    assert statuses[("pt", "bbc-topic")] == "ok" and statuses[("pt", "review-polarity")] == "partial"
    assert statuses[("ptv2", "bbc-topic")] == "failed" and statuses[("ptv2", "hedge-detection")] == "missing"
    assert len([r for r in rows if r["method"] == "pt"]) == 3 + 2  # 3 tasks + one avg per block
    assert {r["block"] for r in rows} == {"UNSEEN DATA / Gradient Descent", "UNSEEN TASK / Gradient Descent"}
    tex = to_latex(table)
    assert r"\toprule" in tex and r"65.0 $\pm$ 7.1" in tex


def test_format_count_matches_the_papers_style():
    assert [format_count(n) for n in (308, 7_200, 51_200, 1_228_800, 393_000_000, 11_000_000_000)] == \
        ["308", "7.2K", "51.2K", "1.2M", "393M", "11B"]
