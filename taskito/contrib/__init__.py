"""Integrations with web frameworks. Each framework is imported only by its own module here."""
