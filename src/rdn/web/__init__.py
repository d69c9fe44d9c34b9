"""The web shell: layout templates, vendored static assets, the home dashboard and health checks."""
