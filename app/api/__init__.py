"""HTTP edge: thin routes that validate, call a domain service and render."""
