"""Analyses of per-item results: accuracy vs PMI (`pmi`), the PMI/VQA reports (`reports`, `vqa`), accuracy vs
train–test similarity (`similarity`), run tables (`gather`) and report formatting (`report`)."""

from clipcomp.analysis.pmi import (
    PMIAnalysis,
    analyze,
    analyze_given_pmi,
    analyze_results,
    attach_pmi,
    equal_count_bins,
    partial_correlation,
    top_bottom_gap,
    wilson_interval,
)

__all__ = ["PMIAnalysis", "analyze", "analyze_given_pmi", "analyze_results", "attach_pmi", "equal_count_bins",
           "partial_correlation", "top_bottom_gap", "wilson_interval"]
