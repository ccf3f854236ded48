"""Bad input fails in one line before any compute; good input expands into the right cells."""

import copy
import subprocess
import sys

import pytest
import yaml

from replicate.config import pretrainings_of, cell_settings, cells, check_config, config_hash, groups, load_config
from replicate.errors import ConfigError, ReplicateError

from conftest import REPO, TINY_CONFIG


def broken(**changes):
    cfg = copy.deepcopy(TINY_CONFIG)
    for dotted, value in changes.items():
        node = cfg
        *path, last = dotted.split(".")
        for key in path:
            node = node[key]
        node[last] = value
    return cfg


@pytest.mark.parametrize("changes, message", [
    ({"grid.methods": ["pt", "prefix-magic"]}, "unknown method 'prefix-magic'"),
    ({"grid.tasks": ["bbc-topic", "imdb-xl"]}, "unknown task 'imdb-xl'"),
    ({"grid.backbone": "gpt-17"}, "unknown backbone 'gpt-17'"),
    ({"grid.shots": [0]}, "grid/shots/0"),
    ({"grid.shots": [-4]}, "grid/shots/0"),
    ({"grid.seeds": [8, 13, 8]}, "duplicate seed(s) [8]"),
    ({"methods.pt": {"epochs": 2, "learning_rate": 1}}, "unknown config field(s) learning_rate"),
    ({"methods.pt": {"epochs": 0}}, "methods/pt/epochs: must be >= 1, not 0"),
    ({"protocol.test_cap": "all"}, "protocol/test_cap"),
    ({"paper_data_files": {"tnews": {"train": "/nonexistent/train.jsonl", "test": "/nonexistent/test.jsonl"}},
      "grid.tasks": ["tnews"]}, "missing data file /nonexistent/train.jsonl"),
    ({"paper_data_files": {"bbc-topic": {"train": "a", "test": "b"}}}, "not a Hub task"),
])
def test_bad_config_is_one_clear_error(changes, message):
    with pytest.raises(ReplicateError) as err:
        check_config(broken(**changes))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))


def test_cli_prints_one_line_and_exits_2(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(broken(**{"grid.seeds": [1, 1]})))
    done = subprocess.run([sys.executable, "-m", "replicate", "check-config", str(path)],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == "replicate: config grid/seeds: duplicate seed(s) [1]"


def test_cells_and_settings():
    cfg = check_config(copy.deepcopy(TINY_CONFIG))
    assert len(groups(cfg)) == 3 * 2
    assert len(list(cells(cfg))) == 3 * 2 * 2
    a = cell_settings(cfg, groups(cfg)[0])
    assert a["method_config"]["epochs"] == 1 and a["protocol"]["test_cap"] == 24
    # the hash covers what determines a result, not the run's name
    renamed = dict(cfg, run="other")
    assert config_hash(cell_settings(renamed, groups(cfg)[0])) == config_hash(a)
    changed = copy.deepcopy(cfg)
    changed["methods"]["model-tuning"]["epochs"] = 3
    assert config_hash(cell_settings(changed, groups(cfg)[0])) != config_hash(a)


def test_a_methods_fields_can_differ_by_task_and_by_shot():
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["grid"]["shots"] = [4, 8]
    cfg["methods"]["pt"].update(by_task={"fine-foods": {"max_length": 40, "epochs": 3}}, by_shot={4: {"epochs": 5}})
    cfg = check_config(cfg)
    settings = {(g.task, g.shot): cell_settings(cfg, g)["method_config"] for g in groups(cfg) if g.method == "pt"}
    assert settings[("bbc-topic", 8)]["epochs"] == 2 and settings[("bbc-topic", 8)]["max_length"] == 48
    assert settings[("bbc-topic", 4)]["epochs"] == 5  # the shot's
    assert settings[("fine-foods", 4)]["epochs"] == 3 and settings[("fine-foods", 8)]["max_length"] == 40  # the task's over it
    for key, value, message in [("by_task", {"imdb": {"epochs": 1}}, "by_task: 'imdb' is not a task of grid/tasks"),
                                ("by_shot", {16: {"epochs": 1}}, "by_shot: 16 is not a shot of grid/shots"),
                                ("by_task", {"bbc-topic": {"epochs": 0}}, "methods/pt/epochs: must be >= 1")]:
        bad = copy.deepcopy(TINY_CONFIG)
        bad["methods"]["pt"][key] = value
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            check_config(bad)


def test_shipped_configs_validate():
    for name in ("config.yaml", "paper.yaml", "hard-cases.yaml"):
        cfg = load_config(str(REPO / "config" / name))
        assert cfg["grid"]["methods"][:3] == ["model-tuning", "pt", "ptv2"]
        if name != "hard-cases.yaml":  # MP2, its Table 5 ablation, PPT and SPoT, each from its pre-training(s)
            assert {"mp2-shallow", "mp2-deep", "mp2-shallow-w-fsl", "mp2-deep-wo-fsl", "ppt-unified",
                    "spot"} <= set(cfg["grid"]["methods"])
            assert {n for names in pretrainings_of(cfg).values() for n in names} == set(cfg["pretraining"])


@pytest.mark.parametrize("name", ["paper-mpt.yaml", "paper-compt.yaml", "t5-first-run.yaml"])
def test_text_to_text_configs_validate_on_t5_with_their_split_schemes(name):
    cfg = load_config(str(REPO / "config" / name))
    assert cfg["grid"]["backbone"] == "t5-base" and cfg["protocol"]["scheme"] in ("attempt", "compt")
    for group in groups(cfg):
        settings = cell_settings(cfg, group)["method_config"]
        assert settings["formulation"] == "seq2seq" and settings["reader"] == "generate"


@pytest.mark.parametrize("method", ["mp2-shallow", "mp2-deep-black-box"])
def test_a_router_form_other_than_the_pretrainings_is_refused_in_one_line(method):
    """Gradient and black-box MP2 read the routers' form of their pre-training: a mismatch
    (MPMP's sigmoid / sum downstream of an eq 1 pre-training, or the reverse) stops at
    config check, before any job; the paper config itself passes."""
    cfg = load_config(str(REPO / "config" / "paper.yaml"))
    cfg["grid"]["methods"] = [method]
    name = pretrainings_of(cfg)[method][0]
    other = {"mpmp": "paper", "paper": "mpmp"}
    cfg["pretraining"][name] = {**cfg["pretraining"][name],
                                "combine": other[cfg["pretraining"][name].get("combine", "mpmp")]}
    with pytest.raises(ConfigError) as err:
        check_config(cfg, check_data=False)
    assert f"methods/{method}: pre-training {name!r}" in str(err.value) and "combine" in str(err.value)
    assert "\n" not in str(err.value)


def test_config_readme_describes_every_schema_key_and_config_file():
    """config/README.md (the catalog's convention): every key of config.schema.yaml, nested
    ones as dotted paths, and every config file of config/ has a row."""
    schema = yaml.safe_load((REPO / "config" / "config.schema.yaml").read_text())
    readme = (REPO / "config" / "README.md").read_text()

    def paths(node, prefix=""):
        for key, sub in node.get("properties", {}).items():
            yield prefix + key
            yield from paths(sub, prefix + key + ".")

    keys = list(paths(schema))
    assert len(keys) > 20
    assert [k for k in keys if f"| `{k}` |" not in readme] == []
    files = sorted(p.name for p in (REPO / "config").iterdir() if p.suffix == ".yaml")
    assert [f for f in files if f"| `{f}` |" not in readme] == []
