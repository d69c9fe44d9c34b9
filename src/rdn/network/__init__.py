"""The network: organizations (governments, agencies, offices, sponsor groups), people and their roles."""
