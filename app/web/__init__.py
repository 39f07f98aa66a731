"""What every endpoint shares: authentication and the path check (auth), the per-org rate
limit, JSON bodies, problem+json errors, the services on the Flask app (ext), and the
marshmallow fields both API surfaces use."""
