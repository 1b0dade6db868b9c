# One rule per stage, generated from the stage table (reprolm/stagetable.py): the rule's name is
# the stage's (world, curate, ..., release: `--until sft`, `--allowed-rules evaluate`), its jobs
# are the plan's jobs of that stage, its inputs their planned inputs, and its shell line starts
# the stage's launcher (`python -m stages.<stage>`, or reprolm.launch for training stages).
# Include after common.smk.

for _stage in STAGE_TABLE:

    rule:
        name:
            _stage.name
        input:
            unpack(stage_inputs(_stage.name)),
        output:
            ARTIFACT.format(stage=_stage.name),
        log:
            LOG.format(stage=_stage.name),
        params:
            **stage_params(_stage.name),
        threads: stage_threads(_stage.name)
        resources:
            **stage_resources(_stage.name),
        container:
            stage_container(_stage.name)
        # The shell line is evaluated twice: here (the rule's text, which Snakemake compares to
        # rerun on change) and again when a job runs, inside Snakemake's rule function. By then
        # the loop has moved on, so there it is looked up by the function's `rule` argument: the
        # rule's name, which is the stage's.
        shell:
            stage_shell(vars().get("rule", _stage.name))
