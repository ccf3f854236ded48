"""replicate: a reproducible harness for few-shot soft prompt tuning papers.

The package is importable without torch; modules that train (``model``, ``train``,
``methods``) import it lazily so that configuration checks and the published-number
registry stay fast and dependency-light.
"""

__version__ = "0.1.0"
