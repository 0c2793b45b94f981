"""Relational store, rules, API and ingest: the cloud side of VitalBridge."""
