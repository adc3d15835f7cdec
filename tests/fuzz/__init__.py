"""Fuzz harness: hostile inputs generated from the phantoms and pydicom's test files, run through radedge in capped worker processes."""
