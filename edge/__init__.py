"""Edge gateway agent: reads an office's devices and publishes wire contract v1 readings."""
