"""Stakewatch: streaming monitor for conflicts of interest in AI supply chains."""

__version__ = "0.1.0"
