"""Coordinator stage: verify bundles and pool them into association tests."""
