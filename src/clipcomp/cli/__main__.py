"""`python -m clipcomp.cli ...` (as torchrun and subprocess tests call it) = `clipcomp ...`."""

from clipcomp.cli import main

main()
