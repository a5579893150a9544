"""The engine: planning, the chunk task, memory, dispatch, failure policy, ledger, results store, status."""
