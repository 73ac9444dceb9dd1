"""The reference payment service: the contract the load generator targets (FastAPI + SQLite).

Run it with ``python -m payment_service --port 8000 --db payments.sqlite``; see
``docs/contract.md`` for what it speaks and ``python -m payment_service --help`` for its fault knobs.
This package deliberately imports nothing heavy: ``__main__`` starts tracing before the app loads.
"""
