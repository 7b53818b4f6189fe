"""`python -m streams` is `stakewatch`."""

from streams.cli import main

main()
