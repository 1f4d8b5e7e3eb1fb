"""The transport: one aiohttp session, attempts, retries and error mapping."""
