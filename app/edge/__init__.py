"""The HTTP edge: the Quart app and its routes, the direct contribution path, the
server process, the route contract and OpenAPI document, request parsing, error mapping
and the access log. It calls app.services; nothing below imports it."""
