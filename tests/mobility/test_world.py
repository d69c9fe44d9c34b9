from rdn.mobility import sealed


def test_world(mobility_world, session):
    r = mobility_world.registration()
    assert sealed.full_name(session, r) == "María López"
    assert sealed.contact_of(session, r)["email"] == "maria@example.org"
    p = mobility_world.p("caseworker_cr")
    from rdn.core import policy
    assert policy.can(p, "mobility.registration.read", r)
    assert not policy.can(mobility_world.p("caseworker_co"), "mobility.registration.read", r)
