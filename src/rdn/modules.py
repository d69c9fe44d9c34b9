"""The installed domains, in the order their navigation appears. Adding a domain is one line here."""

from __future__ import annotations

from rdn.core.modules import Module


def installed() -> list[Module]:
    from rdn.accounts.module import module as accounts
    from rdn.cases.module import module as cases
    from rdn.matching.module import module as matching
    from rdn.mobility.module import module as mobility
    from rdn.network.module import module as network
    from rdn.ops.module import module as ops
    from rdn.pathways.module import module as pathways
    from rdn.redphone.module import module as redphone
    from rdn.reports.module import module as reports
    from rdn.web.module import module as shell
    from rdn.welcome.module import module as welcome

    return [shell, accounts, network, redphone, cases, matching, pathways, mobility, welcome, reports, ops]


def load_job_handlers() -> None:
    """Import every module that registers outbox handlers (the worker needs them without the web app)."""
    import rdn.core.events
    import rdn.core.idempotency
    import rdn.core.mail
    import rdn.core.ratelimit
    import rdn.core.webhooks  # noqa: F401

    installed()
