"""NanoAOD access: opening files (local or XRootD), column resolution, the events view."""
