# Evaluation: lm-eval on the recipe's eval sets, one job per checkpoint.


rule evaluate:
    input:
        unpack(stage_inputs("evaluate")),
    output:
        ARTIFACT.format(stage="evaluate"),
    log:
        LOG.format(stage="evaluate"),
    params:
        **stage_params("evaluate"),
    threads: stage_threads("evaluate")
    resources:
        **stage_resources("evaluate"),
    container:
        stage_container("evaluate")
    shell:
        STAGE_SHELL.format(stage="evaluate")
