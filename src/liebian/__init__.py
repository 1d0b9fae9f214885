"""liebian (裂变): fission campaigns, anti-fraud and growth analytics for private-domain brands."""

__version__ = "0.1.0"
