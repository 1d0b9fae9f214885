"""The growth-insight pages after the overview: the fission funnel with its drop-off drill-down, the
retention heatmap, the referral graph, the channel radar, and the scorecard with the sector benchmarks.

Every figure comes from the analytics service (liebian/analytics/service.py); these modules only turn
its results into tables (exportable) and ECharts options, and checks the page's own selectors.
"""
