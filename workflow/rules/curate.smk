# Data: the synthetic tiny-world source, the spec datasets' import (evaldata), curation
# (dedup + decontamination) and tokenization.


rule world:
    output:
        ARTIFACT.format(stage="world"),
    log:
        LOG.format(stage="world"),
    params:
        **stage_params("world"),
    threads: stage_threads("world")
    resources:
        **stage_resources("world"),
    container:
        stage_container("world")
    shell:
        STAGE_SHELL.format(stage="world")


rule evaldata:
    output:
        ARTIFACT.format(stage="evaldata"),
    log:
        LOG.format(stage="evaldata"),
    params:
        **stage_params("evaldata"),
    threads: stage_threads("evaldata")
    resources:
        **stage_resources("evaldata"),
    shell:
        STAGE_SHELL.format(stage="evaldata")


rule curate:
    input:
        unpack(stage_inputs("curate")),
    output:
        ARTIFACT.format(stage="curate"),
    log:
        LOG.format(stage="curate"),
    params:
        **stage_params("curate"),
    threads: stage_threads("curate")
    resources:
        **stage_resources("curate"),
    container:
        stage_container("curate")
    shell:
        STAGE_SHELL.format(stage="curate")


rule tokenize:
    input:
        unpack(stage_inputs("tokenize")),
    output:
        ARTIFACT.format(stage="tokenize"),
    log:
        LOG.format(stage="tokenize"),
    params:
        **stage_params("tokenize"),
    threads: stage_threads("tokenize")
    resources:
        **stage_resources("tokenize"),
    container:
        stage_container("tokenize")
    shell:
        STAGE_SHELL.format(stage="tokenize")
