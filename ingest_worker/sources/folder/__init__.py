"""The watched-folder source: watchdog events and reconciling scans → document events."""
