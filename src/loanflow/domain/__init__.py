"""The decision on one application: rules, enrichment, scorecard, route. Pure: no I/O."""
