"""The cases world (the personas' network, agreements from the agency to three governments) for pathways."""

from tests.cases.conftest import cases_world, make_gov_admins  # noqa: F401 - fixtures
