"""Command-center monitoring: comfort alerts, device and node liveness, data completeness."""
