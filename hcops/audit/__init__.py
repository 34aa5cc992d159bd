"""Continuous audit of running nodes: facts, runtime policies, the tamper-evident log, reports."""
