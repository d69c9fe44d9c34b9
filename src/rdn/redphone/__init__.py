"""The red phone: emergency coordination among senior leaders (crises, paging and escalation, crisis room)."""
