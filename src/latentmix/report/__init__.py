"""A self-contained HTML report of a fitted model: summary tables and inline PNG plots.

``build_report(model, X)`` returns one HTML document with every image embedded as a
``data:image/png;base64`` URI (no external files, scripts or styles), so the file can be
mailed or archived alone. ``latentmix report`` writes it.
"""

from latentmix.report._html import build_report

__all__ = ["build_report"]
