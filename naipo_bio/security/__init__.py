"""Keys, signatures and secure aggregation of summary bundles."""
