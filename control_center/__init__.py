"""Control center: scenarios, launchers, status monitor, fault injection."""
