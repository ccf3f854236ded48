"""Write config/paper-compt-sweeps.yaml: paper-compt.yaml's setup with the sweep points of
ComPT's Figs 2, 5 and 7 as variants of its methods (``variant_of``), each trained at the
shots its figures need (``shots``) and tagged with them (``sweeps``); a point two figures
share is one run. ``python config/make_compt_sweeps.py`` rewrites it."""

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PAPER = yaml.safe_load((HERE / "paper-compt.yaml").read_text())
BASES = {"ssum": 2, "msum": 3, "mcat": 2}  # paper-compt.yaml's n_sources (Fig 5's best)
SOURCES = [1, 2, 3, 5, 10]                 # Fig 2 and Fig 5 (bottom); Table 3 runs 3-10
PRIVATE_LRS = [0.005, 0.01, 0.02, 0.05, 0.1]  # Fig 7: around the source rate 0.05
DEFAULTS = {"weights": "learned"}  # ComPTConfig's, where the figures sweep a field paper-compt.yaml leaves out


def points():
    """(base method, changed fields, shot, figure) of every sweep point."""
    for comp in BASES:
        for suffix in ("", "-set2"):  # Fig 2: GLUE (top) and SET2 (bottom) at k = 8
            for n in SOURCES:
                yield f"compt-{comp}{suffix}", {"n_sources": n}, 8, "compt_fig2"
        for weights in ("learned", "constant"):
            for shot in (8, 16, 32):  # Fig 5 (top): GLUE over k
                yield f"compt-{comp}", {"weights": weights}, shot, "compt_fig5"
            for n in SOURCES:         # Fig 5 (bottom): GLUE over the sources at k = 16
                yield f"compt-{comp}", {"weights": weights, "n_sources": n}, 16, "compt_fig5_sources"
        for epochs in (30, 50):
            for lr in PRIVATE_LRS:    # Fig 7: GLUE at k = 16, 30 and 50 epochs
                yield f"compt-{comp}", {"private_lr": lr, "epochs": epochs}, 16, "compt_fig7"


def name_of(base: str, fields: dict) -> str:
    parts = [base]
    for key, value in sorted(fields.items()):
        text = {"n_sources": f"nsp{value}", "weights": "const" if value == "constant" else "learned",
                "private_lr": "plr" + str(value).replace(".", "p"), "epochs": f"ep{value}"}[key]
        parts.append(text)
    return "-".join(parts)


def sweeps_yaml() -> str:
    cfg = {k: v for k, v in PAPER.items() if k not in ("grid", "methods")}
    cfg["run"] = "paper-compt-sweeps"
    cfg["results_dir"] = "results/paper-compt-sweeps"
    methods, entries = [], {}
    for base, fields, shot, figure in points():
        base_fields = PAPER["methods"][base]
        effective = {**DEFAULTS, **base_fields}  # what the base trains with
        changed = {k: v for k, v in fields.items() if effective.get(k) != v}
        merged = {**base_fields, **changed}
        name = name_of(base, changed) if changed else f"{base}-base"
        entry = entries.setdefault(name, {"variant_of": base, **merged, "shots": [], "sweeps": []})
        entry["shots"] = sorted(set(entry["shots"]) | {shot})
        entry["sweeps"] = sorted(set(entry["sweeps"]) | {figure})
        if name not in methods:
            methods.append(name)
    cfg["grid"] = {**PAPER["grid"], "methods": methods, "tasks": sorted({t for name in methods for t in
                                                                          PAPER["task_sets"][entries[name]["task_set"]]},
                                                                         key=PAPER["grid"]["tasks"].index)}
    cfg["task_sets"] = {k: v for k, v in PAPER["task_sets"].items() if k in ("glue", "set2")}
    cfg["methods"] = entries
    head = ("# ComPT's sweeps (Figs 2, 5 and 7 / A2) on paper-compt.yaml's setup: every point a variant of\n"
            "# one of its methods (variant_of), trained at the shots its figures need (shots) and drawn\n"
            "# by the figures it names (sweeps). Written by config/make_compt_sweeps.py: edit that.\n"
            "#   snakemake -n compt_fig2 compt_fig5 compt_fig5_sources compt_fig7 "
            "--configfile config/paper-compt-sweeps.yaml\n")
    return head + yaml.safe_dump(cfg, sort_keys=False, width=110)


if __name__ == "__main__":
    (HERE / "paper-compt-sweeps.yaml").write_text(sweeps_yaml())
