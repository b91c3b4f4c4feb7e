"""Runners that chain library stages into a study: the quickstart miniature (`miniature`), knob sweeps (`lab`),
the Slipform recipe (`slipform`) and suite tables (`suites`)."""
