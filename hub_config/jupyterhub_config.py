"""JupyterHub configuration for learnhub: the composition root.

``learnhub up`` starts JupyterHub with this file. Settings come from
``LEARNHUB_*`` environment variables and ``learnhub_config.py`` (see the
README's Configuration section). That same ``learnhub_config.py`` is loaded last
here, so it may also set any JupyterHub, authenticator or spawner option
(``c.GenericOAuthenticator.client_id = ...``, ``c.DockerSpawner.image = ...``).
"""
import os

from learnhub.config import load_settings
from learnhub.hub import configure_hub

c = get_config()  # noqa: F821 (provided by JupyterHub)

settings, config_path = load_settings(os.environ.get("LEARNHUB_DATA_DIR"))
configure_hub(c, settings)
if config_path is not None:
    load_subconfig(str(config_path))  # noqa: F821 (provided by traitlets)
