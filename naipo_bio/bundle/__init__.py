"""Summary bundles: the only thing that leaves a site."""
