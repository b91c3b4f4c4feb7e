"""`python -m clipcomp ...` = `clipcomp ...`."""

from clipcomp.cli import main

main()
