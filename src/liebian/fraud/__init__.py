"""Anti-fraud: inline rules for the campaign engine, graph analysis, scoring and the review queue.

The inline rules reach the campaign flows through the wiring (`liebian.bootstrap` puts
`liebian.fraud.inline.RISK_CHECKS` into `liebian.ports.Wiring.risk_checks`), not by importing
this package.
"""
