"""Method registry. Each module registers one method on import (peft-style)."""

from .base import METHODS, Method, PromptConfig, PromptMethod, TrainConfig, register_method  # noqa: F401
# each module registers its method(s) on import
from . import blackbox, compt, model_tuning, mp2, mpt, ppt, prompt_tuning, ptuning_v2, spot  # noqa: F401,E402
