"""The Lambda entry: turns events from every source into requests for `agent`, and results into responses."""
