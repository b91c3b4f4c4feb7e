"""PMI in miniature: a synthetic world whose co-occurrence statistics we set, a model trained on it, and the
PMI analysis of its zero-shot errors — the causal version of Qu & Xie's correlation (`clipcomp quickstart`)."""
