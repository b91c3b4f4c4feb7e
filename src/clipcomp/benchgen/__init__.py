"""PMI-controlled benchmarks: concept-pair sampling (GenPairs) and pasted-object edits of natural images."""
