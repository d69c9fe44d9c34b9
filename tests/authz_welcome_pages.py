"""Authorization-matrix rows of Welcome's pages (see tests/authz_matrix.py for the meaning of a row)."""

from __future__ import annotations

from tests.authz_matrix import Row  # imported at the end of tests/authz_matrix.py, after Row and R

PAGE_ROWS: list[Row] = []
