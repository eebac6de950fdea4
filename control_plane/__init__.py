"""The control plane: settings, the metadata store, domain services, events and background work."""
