"""marshmallow schemas: they validate requests, shape responses and feed /openapi.json."""
