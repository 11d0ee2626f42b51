"""The extension object lives in its own module so tasks and views can import it without cycles."""

from taskito_flask import Taskito

taskito = Taskito()
