"""The console's MODELS pages: LTV and segments (ltv), multi-touch attribution, A/B experiments.

Fits are slow (the LTV fit takes about a minute on 50 000 persons), so the pages show the newest
stored fit or result (liebian.predict.results) and say whether it still matches the data. Refits run
in a background thread of the server process, one at a time, and the page polls their progress
through htmx; a finished refit reloads the page. Attribution is computed the same way when no
stored report matches the filters and the current data, and is then kept in the model store.
"""
