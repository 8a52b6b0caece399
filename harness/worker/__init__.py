"""The Worker bridge: the user's Worker in workerd (Miniflare) with ``env.AI`` pointed at the fake."""
