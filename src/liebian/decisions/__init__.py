"""Decision support: options with expected effects for alerts and report findings, and proposals
that turn one option into a campaign rules version awaiting review."""
