"""Web layer: one hub service per package, the single-user server extension, the JupyterLab frontend."""
