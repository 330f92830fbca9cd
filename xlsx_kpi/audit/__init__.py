"""The audit of one filing: reading it, typed values, recalculation, the rules, findings and the report."""
