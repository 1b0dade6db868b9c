# Post-training as in Tulu 3: SFT, length-normalized DPO, RL with verifiable rewards.


rule sft:
    input:
        unpack(stage_inputs("sft")),
    output:
        ARTIFACT.format(stage="sft"),
    log:
        LOG.format(stage="sft"),
    params:
        **stage_params("sft"),
    threads: stage_threads("sft")
    resources:
        **stage_resources("sft"),
    shell:
        TRAINING_SHELL.format(stage="sft")


rule dpo:
    input:
        unpack(stage_inputs("dpo")),
    output:
        ARTIFACT.format(stage="dpo"),
    log:
        LOG.format(stage="dpo"),
    params:
        **stage_params("dpo"),
    threads: stage_threads("dpo")
    resources:
        **stage_resources("dpo"),
    shell:
        TRAINING_SHELL.format(stage="dpo")


rule rlvr:
    input:
        unpack(stage_inputs("rlvr")),
    output:
        ARTIFACT.format(stage="rlvr"),
    log:
        LOG.format(stage="rlvr"),
    params:
        **stage_params("rlvr"),
    threads: stage_threads("rlvr")
    resources:
        **stage_resources("rlvr"),
    shell:
        TRAINING_SHELL.format(stage="rlvr")
