"""The domain core: configuration, Redis store, national registry, agent and fleet."""
