"""Declarative rules: tags, lifecycle stages, segments and triggers from a rules file."""
