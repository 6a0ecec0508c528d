"""Site stage: from a hospital's own inputs to one summary bundle."""
