"""The campaign: hazard life cycle, events, photos, manual reports, checklists, complaints, deadlines."""
