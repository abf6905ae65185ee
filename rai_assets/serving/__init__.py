"""What tenants are served: exports of the served forecasts and their accuracy."""
