"""Relational registry of the command server: OPDs, rooms, nodes, devices, users, tokens,
node configurations, alerts and the audit log. SQLite by default, PostgreSQL by URL."""
