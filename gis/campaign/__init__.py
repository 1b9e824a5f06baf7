"""The campaign room: the hazard life cycle, its events and deadlines, the workflow over the ledger."""
