"""Cases and referrals: resettlement cases shared between organizations under agreements and consent."""
