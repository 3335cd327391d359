"""Measure grouping quality on labelled data, through the daemon's own code path."""
