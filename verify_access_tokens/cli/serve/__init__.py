"""``verify-access-tokens serve``: the Verify Push backend endpoint under uvicorn.

Internal to the CLI: the command (`_command`), the app it runs (`_app`), readiness
(`_readiness`), its logs (`_logs`) and the one fence around uvicorn's internals
(`_uvicorn_guard`).
"""
