"""Pure handlespace: pools, pool elements, policies, ownership checksum, PU cache."""
