"""Leaderboards: aggregate result CSVs, show them, publish them, and check new runs against them."""

from dig.leaderboard.compare import Comparison, compare, parse_tolerances
from dig.leaderboard.publish import publish
from dig.leaderboard.table import Aggregate, aggregate, read_rows

__all__ = ["Aggregate", "Comparison", "aggregate", "compare", "parse_tolerances", "publish", "read_rows"]
