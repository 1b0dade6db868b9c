# Release: HF-format model, model card, eval table and the lineage manifests.


rule release:
    input:
        unpack(stage_inputs("release")),
    output:
        ARTIFACT.format(stage="release"),
    log:
        LOG.format(stage="release"),
    params:
        **stage_params("release"),
    threads: stage_threads("release")
    resources:
        **stage_resources("release"),
    container:
        stage_container("release")
    shell:
        STAGE_SHELL.format(stage="release")
