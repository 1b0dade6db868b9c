"""curate_shard stage: curate a batch of shards (see stages/curate/shard.py)."""
