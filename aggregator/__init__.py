"""A deduplicating news-feed aggregator: one story, once, with every source that reported it."""

from __future__ import annotations

__version__ = "0.2.0"
PROJECT_URL = "https://github.com/aggregator-news/aggregator"
USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
