"""Welcome: community sponsors who welcome arriving families."""
