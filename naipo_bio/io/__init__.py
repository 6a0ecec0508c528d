"""Readers of site inputs (clinical, somatic, expression) and atomic writers."""
