import copy
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Tests never reach the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

TINY_CONFIG = {
    "run": "tiny",
    "setup": "embedded",
    "results_dir": "results",
    "data_dir": str(FIXTURES),
    "threads_per_job": 1,
    "protocol": {"many_labels": 5, "per_label_when_many": 8, "test_cap": 24},
    "grid": {
        "backbone": "tiny-bert",
        "shots": [8],
        "seeds": [8, 13],
        "methods": ["model-tuning", "pt", "ptv2"],
        "tasks": ["bbc-topic", "fine-foods"],
    },
    "methods": {
        "model-tuning": {"epochs": 1, "max_length": 48},
        "pt": {"epochs": 2, "max_length": 48, "prompt_length": 4},
        "ptv2": {"epochs": 2, "max_length": 48, "prompt_length": 4},
    },
    "paper_data_files": {},
}


@pytest.fixture
def tiny_config(tmp_path):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["results_dir"] = str(tmp_path / "results")
    return cfg
