"""Signing in: the login form, the session keeper, the saved browser state, the login command."""
