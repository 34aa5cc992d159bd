"""hcops: compliance-as-code for healthcare blockchain consortia."""

__version__ = "0.1.0"
