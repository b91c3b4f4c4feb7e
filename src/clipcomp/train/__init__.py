"""Contrastive training of open_clip models (CPU or GPUs, torchrun DDP) with pluggable losses."""
