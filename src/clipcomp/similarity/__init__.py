"""Similarity measures: mechanistic (CKA, shared units) now; train–test kNN similarity next."""
