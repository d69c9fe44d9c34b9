"""Safe Mobility: registration, screening and referral in people's own communities."""
