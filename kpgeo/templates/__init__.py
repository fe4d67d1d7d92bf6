"""Jinja2 templates of the bulletin (package data)."""
