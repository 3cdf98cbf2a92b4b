"""Protocol integrations over :class:`~skytale_sdk.SkytaleChannelManager` (docs/integrations.md).

Each lives in its own module and needs its own extra, imported only when that module is:
:mod:`skytale_sdk.integrations.a2a` (``pip install skytale-sdk[a2a]``),
:mod:`skytale_sdk.integrations.mcp_transport` (``pip install skytale-sdk[mcp]``),
:mod:`skytale_sdk.integrations.slim` (no extra). The cross-protocol bridge is :mod:`skytale_sdk.bridge`.
"""
