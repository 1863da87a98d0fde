"""Example datasets for the demo DAGs and tests (synthetic, seeded, no downloads)."""
