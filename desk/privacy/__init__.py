"""Readers' personal data: retention, and the export and erasure a data subject may ask for."""
