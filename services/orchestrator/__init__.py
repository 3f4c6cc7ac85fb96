"""orchestrator: starts a topology, collects packet records, builds traces and dashboards."""
