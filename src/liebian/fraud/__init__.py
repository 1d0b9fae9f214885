"""Anti-fraud: inline rules for the campaign engine, graph analysis, scoring and the review queue.

The inline rules reach the campaign engine through the wiring (liebian/bootstrap.py), not by import.
"""
