"""radedge serve: the console service."""
