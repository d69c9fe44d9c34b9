"""Matching: the right destination (country and site) for each case, optimally and explainably."""
