"""Anti-fraud: inline rules for the campaign engine, graph analysis, scoring and the review queue.

Importing this package plugs the inline checks into `campaigns.service.RISK_CHECKS` (the server
imports `liebian.fraud.api`, the CLI `liebian.fraud.cli`, the scheduler `liebian.fraud.jobs`).
"""

from liebian.fraud import inline as _inline

_inline.register()
