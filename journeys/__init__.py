"""Journeys of the payment load generator: personas, data, the API client and the stories."""
