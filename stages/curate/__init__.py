"""curate: normalize, exact dedup and 8-gram decontamination of the world's training sets."""
