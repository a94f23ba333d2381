"""Number formatting shared by every rendering (terminal, HTML, study tables): one definition each."""

from __future__ import annotations

DASH = "—"


def pct(x: float | None, digits: int = 1) -> str:
    """A rate as a percentage: 0.123 -> '12.3%'."""
    return DASH if x is None else f"{100 * x:.{digits}f}%"


def pts(x: float | None, digits: int = 1) -> str:
    """A difference of two rates in signed percentage points: 0.02 -> '+2.0 pts'."""
    return DASH if x is None else f"{100 * x:+.{digits}f} pts"


def points(x: float | None, digits: int = 1) -> str:
    """A non-negative spread of two rates in percentage points: 0.02 -> '2.0 pts'."""
    return DASH if x is None else f"{100 * x:.{digits}f} pts"


def num(x: float | None, digits: int = 1) -> str:
    """A rate in points without a unit, for dense tables: 0.123 -> '12.3'."""
    return DASH if x is None else f"{100 * x:.{digits}f}"


def cost(x: float | None) -> str:
    """A clinical cost per case."""
    return DASH if x is None else f"{x:.3f}"


__all__ = ["DASH", "cost", "num", "pct", "points", "pts"]
