"""Evaluation: LPIPS, predictive likelihood, protocols, scoring, reports (``python -m framevrnn.eval``)."""
