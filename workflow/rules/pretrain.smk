# Pretraining: a tiny OLMo-2 model from config on the token shards.


rule pretrain:
    input:
        unpack(stage_inputs("pretrain")),
    output:
        ARTIFACT.format(stage="pretrain"),
    log:
        LOG.format(stage="pretrain"),
    params:
        **stage_params("pretrain"),
    threads: stage_threads("pretrain")
    resources:
        **stage_resources("pretrain"),
    shell:
        TRAINING_SHELL.format(stage="pretrain")
