"""The processor's pure stages: business rules, scorecard, enrichment, assessment."""
