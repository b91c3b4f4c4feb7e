"""Synthetic worlds for controlled experiments: scenes of coloured shapes, captions with data knobs."""

from clipcomp.synth.captions import CaptionKnobs, caption_scene
from clipcomp.synth.render import render_scene
from clipcomp.synth.world import Obj, Scene, WorldConfig, sample_scene

__all__ = ["CaptionKnobs", "Obj", "Scene", "WorldConfig", "caption_scene", "render_scene", "sample_scene"]
