"""Accounts: signing in with password and TOTP, sessions, API tokens, the account page."""
