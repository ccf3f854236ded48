# replicate: regenerate the tables of few-shot soft prompt tuning papers.
#   snakemake --cores 2 table3                             # embedded default (this CPU)
#   snakemake --cores 8 table3 --configfile config/paper.yaml   # MP2's exact grid (GPUs)
# Every rule calls `python -m replicate <subcommand>`, so each job also runs by hand.

from snakemake.utils import min_version

min_version("9.0")


# `snakemake --report results/report.html <targets>` (make report): every table, diff and figure the
# targets built, each with its caption (docs/report/*.rst), under this description.
report: "docs/report/workflow.rst"


# A --configfile names a whole run (config/paper.yaml, a test config): it replaces the
# embedded default instead of being merged over it, so no default leaks into another run.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/splits.smk"
include: "rules/pretrain.smk"
include: "rules/train.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"
include: "rules/compt.smk"


rule all:
    default_target: True
    localrule: True
    input:
        rules.tables.input,
