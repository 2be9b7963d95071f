"""The Panel dashboard."""
