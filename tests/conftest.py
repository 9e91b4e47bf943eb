"""Test-session settings: the tests never reach the Hugging Face Hub.

``HF_HUB_OFFLINE=1`` is set before anything imports huggingface_hub, so a hub name in a test reads the
local cache only (the download path is tested against a local stand-in for the hub: hub_server.py).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
