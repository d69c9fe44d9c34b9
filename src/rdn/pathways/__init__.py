"""Pathways and obstacles: the legal pathways each country offers, what blocks cases, and what is done about it."""
