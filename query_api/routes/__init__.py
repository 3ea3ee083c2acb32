"""The HTTP API's endpoints, one router per resource; `query_api.app` includes them."""
