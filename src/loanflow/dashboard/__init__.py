"""The operations dashboard (static files served at `/`)."""
