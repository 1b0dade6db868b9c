# An external HF-format base model registered as a source artifact (recipes that do not pretrain).


rule base_model:
    output:
        ARTIFACT.format(stage="base_model"),
    log:
        LOG.format(stage="base_model"),
    params:
        **stage_params("base_model"),
    threads: stage_threads("base_model")
    resources:
        **stage_resources("base_model"),
    shell:
        STAGE_SHELL.format(stage="base_model")
