"""The xlsx package on disk: the only place that opens zip members and parses or patches their XML."""
