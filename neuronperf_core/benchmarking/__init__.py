"""The benchmark engine: plan -> runner -> raw results (reports live in reporting.py)."""
