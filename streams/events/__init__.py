"""Stakewatch."""
