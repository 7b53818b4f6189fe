"""`stakewatch demo` shows the Scale AI conflicts firing and resolving."""

from __future__ import annotations

import io

from rich.console import Console

from streams.demo import run_demo


def test_demo_renders_the_google_conflict_firing_and_resolving():
    """The demo prints the critical Google panel with the path and money, then its resolution."""
    out = io.StringIO()
    shown = run_demo(pace=0, console=Console(file=out, width=120))
    text = out.getvalue()
    assert shown == 6
    assert "CRITICAL · google|scale-ai|meta" in text
    assert "meta —49%→ scale-ai" in text and "$150.0M" in text
    assert "RESOLVED" in text.upper() and "c-google-scale-2024" in text
